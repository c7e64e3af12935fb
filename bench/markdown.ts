/** The markdown report of `npm run bench` (bench/results/latest.md, also printed). */
import { allRuns, batchFigures, clusterBaseline, derive, targets, warnings, type BenchRun, type ReferenceSide } from './report.ts'
import { ms, num, signedMs, targetTable } from './targets.ts'

function scenarioTable(run: BenchRun): string[] {
  const n = run.connections
  const lines = [
    `| scenario | req/s direct @${n} | req/s through @${n} | through/direct | p50 @1 direct | p50 @1 through | added p50 @1 | p99 @1 direct | p99 @1 through | added p99 @1 | p99 @${n} saturation direct | p99 @${n} saturation through | added p99 @${n} saturation |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const s of run.scenarios) {
    const d = derive(s)
    if (!d || !s.direct || !s.through) {
      lines.push(`| ${s.title} | n/a (${s.skipped ?? 'not measured'}) |${' |'.repeat(11)}`)
      continue
    }
    const { direct, through } = s
    lines.push(
      `| ${s.title} | ${num(direct.loaded.reqPerSec)} | ${num(through.loaded.reqPerSec)} | ${num(d.throughputPct, 1)} % ` +
        `| ${ms(direct.single.p50Ms)} | ${ms(through.single.p50Ms)} | ${signedMs(d.addedP50Single)} ` +
        `| ${ms(direct.single.p99Ms)} | ${ms(through.single.p99Ms)} | ${signedMs(d.addedP99Single)} ` +
        `| ${ms(direct.loaded.p99Ms)} | ${ms(through.loaded.p99Ms)} | ${signedMs(d.addedP99Loaded)} |`,
    )
  }
  return lines
}

function fixedRateTable(run: BenchRun): string[] {
  const measured = run.scenarios.filter((s) => s.fixedRate)
  if (!measured.length) return []
  const lines = [
    '',
    `At a fixed rate — ${num(run.rateFraction * 100)} % of the through capacity measured above, requests evenly spaced over ` +
      `${run.connections} connections, open loop — both sides see the same load and neither saturates, so the difference ` +
      'is what the service adds to each request (at saturation the through side queues, and its p99 is mostly that queue). ' +
      'Each side runs several times, interleaved; the run with the median p99 is shown, and every run\'s p99 in the last column. ' +
      '"Generator stall": the longest the load generator\'s own event loop was held up during the shown run, its noise floor ' +
      '(1–2 ms is timer resolution):',
    '',
    '| scenario | rate req/s | answered direct | answered through | p50 direct | p50 through | added p50 | p99 direct | p99 through | added p99 | generator stall max direct / through | p99 of each run, direct / through |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  for (const s of measured) {
    const r = s.fixedRate!
    const d = derive(s)!
    lines.push(
      `| ${s.title} | ${num(r.ratePerSec)} | ${num(r.direct.reqPerSec)} | ${num(r.through.reqPerSec)} ` +
        `| ${ms(r.direct.p50Ms)} | ${ms(r.through.p50Ms)} | ${signedMs(d.addedP50Rate)} ` +
        `| ${ms(r.direct.p99Ms)} | ${ms(r.through.p99Ms)} | ${signedMs(d.addedP99Rate)} ` +
        `| ${num(r.direct.generatorStallMaxMs, 1)} / ${num(r.through.generatorStallMaxMs, 1)} ` +
        `| ${r.p99Runs ? `${r.p99Runs.direct.map((v) => num(v, 2)).join(', ')} / ${r.p99Runs.through.map((v) => num(v, 2)).join(', ')}` : '—'} |`,
    )
  }
  return lines
}

function batchSection(run: BenchRun): string[] {
  if (!run.batch) return []
  const b = run.batch
  const f = batchFigures(b)
  return [
    '',
    `Embeddings through the service at ${b.single.connections} connections, in items (texts embedded) per second: ` +
      `one text per \`POST /v1/tasks/text-embeddings\` vs ${b.batchSize} per \`POST /v1/tasks/text-embeddings/batch\` ` +
      '(one upstream request per batch):',
    '',
    '| route | req/s | items/s | p99 ms |',
    '| --- | ---: | ---: | ---: |',
    `| single | ${num(b.single.reqPerSec)} | ${num(f.singleItemsPerSec)} | ${ms(b.single.p99Ms)} |`,
    `| batch of ${b.batchSize} | ${num(b.batch.reqPerSec)} | ${num(f.batchItemsPerSec)} | ${ms(b.batch.p99Ms)} |`,
    '',
    `Batch gain: **${num(f.gain, 1)}×** the items/s of single requests.`,
  ]
}

function referencesSection(run: BenchRun): string[] {
  if (!run.references) return []
  const { bench, contract, contractSkipped } = run.references
  const row = (name: string, side: ReferenceSide): string => {
    const pct = (r: number): string => `${num((100 * r) / side.direct.reqPerSec, 1)} %`
    return (
      `| ${name} | ${num(side.direct.reqPerSec)} | ${num(side.floor.reqPerSec)} (${pct(side.floor.reqPerSec)}) ` +
      `| ${num(side.through.reqPerSec)} (${pct(side.through.reqPerSec)}) | ${num((100 * side.through.reqPerSec) / side.floor.reqPerSec, 1)} % ` +
      `| ${num(side.floorRssMb ?? NaN, 1)} |`
    )
  }
  return [
    '',
    `References: text-generation JSON at ${bench.direct.connections} connections against two upstreams — the bench upstream ` +
      '(fixed bytes, no per-request work: the service\'s worst case) and the test suite\'s contract stand-in ' +
      '(parses each request, checks it against OpenAI\'s OpenAPI contract, builds its answer) — straight, through the ' +
      '*floor forwarder* (node:http + one undici Pool, nothing else: the least any Node gateway does) and through the service:',
    '',
    '| upstream | req/s direct | req/s floor forwarder (% of direct) | req/s service (% of direct) | service / floor | floor RSS after its run, MB |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    row('bench upstream (fixed bytes)', bench),
    contract ? row('contract stand-in', contract) : `| contract stand-in | n/a (${contractSkipped ?? 'not measured'}) | | | | |`,
    ...(contract ? ['', `Service against the contract stand-in (its own process): RSS after its run ${num(contract.serviceRssMb ?? NaN, 1)} MB.`] : []),
  ]
}

function clusterSection(run: BenchRun): string[] {
  if (!run.cluster) return []
  const c = run.cluster
  const base = clusterBaseline(run)
  const direct = base?.direct?.loaded.reqPerSec ?? NaN
  const single = base?.through?.loaded.reqPerSec ?? NaN
  return [
    '',
    `Cluster: text-generation JSON through \`node ${[...c.nodeArgs, c.entry].join(' ')}\` with WORKERS=${c.workers} on this ${run.cpus}-CPU machine ` +
      `(load generator and bench upstream on the same CPUs), at ${c.through.connections} connections:`,
    '',
    '| service | req/s | % of direct | × single process | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| single process | ${num(single)} | ${num((100 * single) / direct, 1)} % | 1.0× | ${ms(base?.through?.loaded.p99Ms ?? NaN)} |`,
    `| cluster, ${c.workers} workers | ${num(c.through.reqPerSec)} | ${num((100 * c.through.reqPerSec) / direct, 1)} % | ${num(c.through.reqPerSec / single, 2)}× | ${ms(c.through.p99Ms)} |`,
    '',
    `Cluster ready in ${num(c.startupMs)} ms; RSS of primary and workers after the run ${num(c.rssMb ?? NaN, 1)} MB.`,
  ]
}

function cpuTable(run: BenchRun): string[] {
  const lines = [
    '',
    `CPU during the runs at ${run.connections} connections and at the fixed rate, in % of one core (the machine has ${run.cpus}), and service CPU time per answered request:`,
    '',
    '| run | load generator | bench upstream | service | other processes | service CPU µs/request |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const { label, result } of allRuns(run)) {
    if (result.connections === 1) continue
    const { cpu, reqPerSec } = result
    const perRequest = cpu.service > 1 ? num((cpu.service / 100 / reqPerSec) * 1e6) : '—'
    lines.push(`| ${label} | ${num(cpu.loadgen)} % | ${num(cpu.upstream)} % | ${num(cpu.service)} % | ${num(cpu.other)} % | ${perRequest} |`)
  }
  return lines
}

export function markdown(run: BenchRun): string {
  const { service } = run
  const build = service.buildMs === undefined ? '' : `, built by npm run build in ${num(service.buildMs / 1000, 1)} s`
  const lines = [
    `# openai-tasks benchmark — ${run.date}`,
    '',
    `Node ${run.node}, ${run.cpus} CPUs; each run ${run.durationSec} s after a ${run.warmupSec} s warm-up; ` +
      'load generators (autocannon; undici for the fixed rate), bench upstream and service all on this machine. ' +
      'Latencies in ms; "direct" = straight to the bench upstream, "through" = via the service; ' +
      `"saturation" = ${run.connections} connections sending as fast as answers come.`,
    '',
    ...scenarioTable(run),
    ...fixedRateTable(run),
    ...batchSection(run),
    ...referencesSection(run),
    ...clusterSection(run),
    ...cpuTable(run),
    '',
    `Service (\`node ${[...service.nodeArgs, service.entry].join(' ')}\` in ${service.dir}${build}; ${service.allocator ?? 'glibc malloc'}): ` +
      `ready in ${num(service.startupMs)} ms; RSS idle after start ${num(service.idleRssMb ?? NaN, 1)} MB, ` +
      `after the scenarios ${num(service.afterScenariosRssMb ?? NaN, 1)} MB, at the end of the last run ${num(service.rssMb ?? NaN, 1)} MB ` +
      `(peak ${num(service.peakRssMb ?? NaN, 1)} MB)` +
      (service.settledRssMb === undefined ? '.' : `, ${num(service.settledRssMb, 1)} MB ${num((service.settleMs ?? NaN) / 1000, 1)} s later, idle.`),
    '',
    '## Targets',
    '',
    ...targetTable(targets(run)),
  ]
  for (const s of run.scenarios) if (s.skipped) lines.push(`| (all) | ${s.title} | n/a (${s.skipped}) | | n/a |`)
  const warns = warnings(run)
  if (warns.length) {
    lines.push('', '## Warnings', '', ...warns.map((w) => `- ${w}`))
    if (service.logTail.length) lines.push('', '```', ...service.logTail, '```')
  }
  return `${lines.join('\n')}\n`
}
