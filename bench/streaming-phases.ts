/** The phases of `npm run bench:streaming`: first bytes, memory while streaming, cancellations. */
import { rm, writeFile } from 'node:fs/promises'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OTHER_CPU_LIMIT, type CpuMeter } from './cpu.ts'
import { whileSampling } from './rss-sampler.ts'
import { prepare, SCENARIOS, type RequestSpec, type Scenario } from './scenarios.ts'
import { cancelOnce, firstByteMs, slowRead, uploadMultipart } from './stream-client.ts'
import { distribution, type CancelResult, type FirstByteResult, type MemoryResult, type StreamingRun } from './streaming-report.ts'
import { wavHeader } from '../test/support/wav.ts'

export const MB = 1024 * 1024

export interface StreamingSettings {
  ttfbRequests: number
  cancels: number
  ttsBytes: number
  slowReadBytesPerSec: number
  slowReadLimitMs: number
  uploadBytes: number
}

/** What every phase works with. */
export interface PhaseContext {
  settings: StreamingSettings
  meter: CpuMeter
  signal: AbortSignal
  log: (line: string) => void
  serviceUrl: string
  upstreamUrl: string
  /** The service's process, whose memory is sampled. */
  pid: number
}

export const TEXT_TO_SPEECH: Scenario = {
  id: 'text-to-speech',
  title: 'text-to-speech audio/mpeg',
  route: '/v1/tasks/text-to-speech',
  upstreamPath: '/v1/audio/speech',
  input: { model: 'tts-1', text: 'The quick brown fox jumps over the lazy dog.', voice: 'alloy' },
  accept: 'audio/mpeg',
  expectContentType: 'audio/mpeg',
  unsupported: 'the service does not stream audio',
}
export const SSE = SCENARIOS.find((s) => s.id === 'text-generation-sse')!
const JSON_GENERATION = SCENARIOS.find((s) => s.id === 'text-generation-json')!

/** The scenario's request through the service, with some input fields replaced. */
function through(s: Scenario, serviceUrl: string, patch: Record<string, unknown>): RequestSpec {
  return {
    url: serviceUrl + s.route,
    headers: { 'content-type': 'application/json', accept: s.accept },
    body: JSON.stringify({ ...s.input, ...patch }),
  }
}

/** Runs one phase once the machine is quiet; resolves with its result and the CPU other processes took. */
async function phase<T>(ctx: PhaseContext, title: string, work: () => Promise<T>): Promise<{ result: T; otherCpu: number }> {
  ctx.signal.throwIfAborted()
  await ctx.meter.waitForQuiet(ctx.log)
  const before = await ctx.meter.snapshot()
  const result = await work()
  const { other } = ctx.meter.share(before, await ctx.meter.snapshot())
  ctx.signal.throwIfAborted()
  ctx.log(`  ${title}: done${other > OTHER_CPU_LIMIT ? ` (busy machine: others ${other.toFixed(0)} % CPU)` : ''}`)
  return { result, otherCpu: other }
}

/** Direct and through, interleaved, one request at a time on a kept-alive connection each. */
export async function firstBytes(ctx: PhaseContext, s: Scenario): Promise<FirstByteResult> {
  const requests = await prepare(s, ctx.serviceUrl, ctx.upstreamUrl)
  if ('skipped' in requests) throw new Error(`${s.title}: ${requests.skipped}`)
  const agents = { direct: new Agent({ keepAlive: true, maxSockets: 1 }), through: new Agent({ keepAlive: true, maxSockets: 1 }) }
  const times = { direct: [] as number[], through: [] as number[] }
  try {
    const { otherCpu } = await phase(ctx, `first byte, ${s.title}`, async () => {
      // 20 unmeasured rounds first: connections open, code paths warm.
      for (let i = -20; i < ctx.settings.ttfbRequests; i++) {
        for (const side of ['direct', 'through'] as const) {
          const t = await firstByteMs(requests[side], agents[side])
          if (i >= 0) times[side].push(t)
        }
      }
    })
    return { title: s.title, direct: distribution(times.direct), through: distribution(times.through), otherCpu }
  } finally {
    agents.direct.destroy()
    agents.through.destroy()
  }
}

/** A long audio stream through the service to a client reading it slowly, the service's RSS sampled. */
export async function slowReader(ctx: PhaseContext): Promise<NonNullable<StreamingRun['slowRead']>> {
  const { ttsBytes, slowReadBytesPerSec: rate, slowReadLimitMs } = ctx.settings
  const spec = through(TEXT_TO_SPEECH, ctx.serviceUrl, { text: `bench-bytes-${ttsBytes}` })
  const title = `text-to-speech: ${round(ttsBytes / MB)} MB read at ${round(rate / MB)} MB/s`
  const { result, otherCpu } = await phase(ctx, title, () => whileSampling(ctx.pid, () => slowRead(spec, rate, slowReadLimitMs)))
  if (result.result.bytes !== ttsBytes) throw new Error(`${title}: got ${result.result.bytes} bytes`)
  return { title, bytes: result.result.bytes, ms: result.result.ms, rss: result.rss, otherCpu, bytesPerSec: rate }
}

const round = (v: number): string => (Number.isInteger(v) ? String(v) : v.toFixed(1))

/** A WAV file of `bytes` (header and silence): the service sniffs the type, OpenAI takes wav. */
async function wavFile(path: string, bytes: number): Promise<void> {
  await writeFile(path, Buffer.concat([wavHeader(bytes - 44, 16_000), Buffer.alloc(bytes - 44)]))
}

/** A file posted as multipart to speech-recognition, streamed from disk, the service's RSS sampled. */
export async function upload(ctx: PhaseContext): Promise<MemoryResult> {
  const size = ctx.settings.uploadBytes
  const title = `speech-recognition: ${round(size / MB)} MB multipart upload`
  const path = join(tmpdir(), `openai-tasks-bench-${process.pid}.wav`)
  const send = async (bytes: number): Promise<{ ms: number }> => {
    const res = await uploadMultipart(
      {
        url: `${ctx.serviceUrl}/v1/tasks/speech-recognition`,
        file: { field: 'audio', path, size: bytes, filename: 'talk.wav', type: 'audio/wav' },
        fields: { model: 'whisper-1' },
      },
      60_000,
    )
    if (res.status !== 200 || !res.body.includes('bench transcription')) {
      throw new Error(`${title}: the service answered ${res.status}: ${res.body.slice(0, 300)}`)
    }
    return res
  }
  try {
    // Warm-up: the multipart and upload code paths loaded before the measured upload.
    await wavFile(path, 64 * 1024)
    await send(64 * 1024)
    await wavFile(path, size)
    const { result, otherCpu } = await phase(ctx, title, () => whileSampling(ctx.pid, () => send(size)))
    return { title, bytes: size, ms: result.result.ms, rss: result.rss, otherCpu }
  } finally {
    await rm(path, { force: true })
  }
}

let holdIds = 0

/** Sequential cancellations of held requests, per route: JSON, SSE, audio. */
export async function cancellations(ctx: PhaseContext): Promise<CancelResult[]> {
  const routes = [
    { title: 'text-generation JSON', s: JSON_GENERATION, field: 'prompt', stream: false },
    { title: 'text-generation SSE', s: SSE, field: 'prompt', stream: true },
    { title: 'text-to-speech audio/mpeg', s: TEXT_TO_SPEECH, field: 'text', stream: true },
  ]
  const results: CancelResult[] = []
  for (const route of routes) {
    const times: number[] = []
    const { otherCpu } = await phase(ctx, `cancellation, ${route.title}`, async () => {
      for (let i = 0; i < ctx.settings.cancels; i++) {
        const id = String(++holdIds)
        const spec = through(route.s, ctx.serviceUrl, { [route.field]: `bench-hold-${id}` })
        times.push(await cancelOnce(spec, ctx.upstreamUrl, id, route.stream))
      }
    })
    results.push({ title: route.title, times: distribution(times), missed: times.filter(Number.isNaN).length, otherCpu })
  }
  return results
}

/** The service's own count of OpenAI requests in flight (from /metrics). */
export async function upstreamInFlight(serviceUrl: string): Promise<number | undefined> {
  const res = await fetch(`${serviceUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  const match = /^openai_tasks_upstream_requests_in_flight(?:\{[^}]*\})? (\S+)$/m.exec(text)
  return match ? Number(match[1]) : undefined
}
