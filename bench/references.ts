/**
 * Text generation JSON against references, so the service's figures can be read against what
 * any Node gateway gets on this machine: the floor forwarder (bench/floor-forwarder.ts) in front
 * of each upstream, and a second upstream that does per-request work — the test suite's
 * contract stand-in — straight, through the floor forwarder and through the service.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { CpuMeter } from './cpu.ts'
import type { Measurer } from './measure.ts'
import { memoryOf } from './proc.ts'
import { startBenchServer, stopChild, type Child } from './processes.ts'
import type { Measured, ReferenceResult } from './report.ts'
import type { PreparedScenario, RequestSpec } from './scenarios.ts'
import { launch, productionNodeArgs } from './service.ts'
import type { Settings } from './settings.ts'

/** What the contract stand-in checks requests against (as test/support/fake-openai.ts finds it). */
const CONTRACT_FILE = process.env.OPENAI_OPENAPI_YAML || fileURLToPath(new URL('../../shared/openai/openapi.yaml', import.meta.url))

const at = (port: number, spec: RequestSpec): RequestSpec => ({ ...spec, url: `http://127.0.0.1:${port}${new URL(spec.url).pathname}` })

export interface ReferenceDeps {
  settings: Settings
  measurer: Measurer
  meter: CpuMeter
  /** The scenarios' upstream and its text-generation JSON figures, measured already. */
  bench: { child: Child; port: number; direct: Measured; through: Measured }
  /** The text-generation JSON requests, straight and through the service. */
  generation: PreparedScenario
}

export async function measureReferences({ settings, measurer, meter, bench, generation }: ReferenceDeps): Promise<ReferenceResult> {
  const { upstream: benchUpstream, service: measuredService } = meter
  // The service's production flags (young generation size, pretenuring) and malloc, for a like-for-like comparison.
  const floorArgs = await productionNodeArgs(settings.serviceDir, 'server')

  /** The floor forwarder in front of `upstreamPort`, loaded; stopped afterwards. */
  const viaFloor = async (upstreamPort: number, label: string): Promise<{ result: Measured; rssMb?: number }> => {
    const floor = await startBenchServer(
      'floor-forwarder.ts',
      `floor forwarder (${label})`,
      { ...settings.allocator.env, UPSTREAM_ORIGIN: `http://127.0.0.1:${upstreamPort}` },
      floorArgs,
    )
    meter.service = floor.child
    try {
      const result = await measurer.loaded(`text-generation JSON through the floor forwarder (${label})`, at(floor.port, generation.direct))
      const memory = await memoryOf(floor.child.proc.pid!)
      return { result, ...(memory && { rssMb: memory.rssMb }) }
    } finally {
      await stopChild(floor.child)
    }
  }

  try {
    meter.upstream = bench.child
    const benchFloor = await viaFloor(bench.port, 'bench upstream')
    const benchSide = { direct: bench.direct, through: bench.through, floor: benchFloor.result, floorRssMb: benchFloor.rssMb }
    if (!existsSync(CONTRACT_FILE)) return { bench: benchSide, contractSkipped: `no OpenAPI contract at ${CONTRACT_FILE}` }

    const contract = await startBenchServer('contract-upstream.ts', 'contract stand-in')
    meter.upstream = contract.child
    meter.service = undefined
    try {
      const direct = await measurer.loaded('text-generation JSON direct (contract stand-in)', at(contract.port, generation.direct))
      const service = await launch(settings, contract.port)
      meter.service = service.child
      let through: Measured
      let serviceRssMb: number | undefined
      try {
        through = await measurer.loaded('text-generation JSON through (contract stand-in)', at(Number(new URL(service.url).port), generation.through))
        serviceRssMb = (await memoryOf(service.child.proc.pid!))?.rssMb
      } finally {
        await stopChild(service.child)
      }
      const contractFloor = await viaFloor(contract.port, 'contract stand-in')
      return {
        bench: benchSide,
        contract: { direct, through, floor: contractFloor.result, floorRssMb: contractFloor.rssMb, serviceRssMb },
      }
    } finally {
      await stopChild(contract.child)
    }
  } finally {
    meter.upstream = benchUpstream
    meter.service = measuredService
  }
}
