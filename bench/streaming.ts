/**
 * `npm run bench:streaming`: what the service adds to streams, against the bench upstream —
 * time to first byte (audio, SSE), memory while a slow reader takes 50 MB of audio and while a
 * 25 MB file is uploaded, and how soon a client's disconnect aborts the upstream request.
 * Builds the service and runs `node dist/server.js` (BENCH_FROM_SOURCE=1: src/server.ts);
 * writes bench/results/streaming.md (also printed) and streaming.json.
 */
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { CpuMeter } from './cpu.ts'
import { memoryOf } from './proc.ts'
import { guardBenchRun, runToExit } from './processes.ts'
import { serviceFacts, startBenchPair } from './service.ts'
import { number, readServiceSettings, SERVICE_SETTINGS_HELP } from './settings.ts'
import { cancellations, firstBytes, MB, slowReader, SSE, TEXT_TO_SPEECH, upload, upstreamInFlight, type PhaseContext } from './streaming-phases.ts'
import { writeStreamingResults, type StreamingRun } from './streaming-report.ts'

const log = (line: string): void => void process.stderr.write(`${line}\n`)

const HELP = `npm run bench:streaming: first-byte time, memory and cancellation of the service's streams.
Env:
  BENCH_TTFB_REQUESTS       sequential requests per side for the first-byte times (default 200)
  BENCH_CANCELS             cancellations per route (default 50)
  BENCH_TTS_MB              MB of audio streamed to the slow reader (default 50)
  BENCH_SLOW_READ_MBPS      MB/s the slow reader takes (default 5)
  BENCH_UPLOAD_MB           MB of the uploaded audio file (default 25: OpenAI's limit)
${SERVICE_SETTINGS_HELP}`

if (process.argv.includes('--help')) {
  log(HELP)
  process.exit(0)
}

function readStreamingSettings(env: NodeJS.ProcessEnv = process.env) {
  const ttsBytes = Math.round(number(env, 'BENCH_TTS_MB', 50) * MB)
  const slowReadBytesPerSec = number(env, 'BENCH_SLOW_READ_MBPS', 5) * MB
  return {
    ...readServiceSettings(env),
    ttfbRequests: Math.round(number(env, 'BENCH_TTFB_REQUESTS', 200)),
    cancels: Math.round(number(env, 'BENCH_CANCELS', 50)),
    ttsBytes,
    slowReadBytesPerSec,
    // Twice the expected reading time, and some.
    slowReadLimitMs: (2 * ttsBytes * 1000) / slowReadBytesPerSec + 10_000,
    uploadBytes: Math.round(number(env, 'BENCH_UPLOAD_MB', 25) * MB),
  }
}

let settings: ReturnType<typeof readStreamingSettings>
try {
  settings = readStreamingSettings()
} catch (err) {
  log(`bench:streaming: ${(err as Error).message}\n${HELP}`)
  process.exit(1)
}

// Bound on the whole run: the build, the slow read, everything else, and waits for a quiet machine.
const budgetMs = 180_000 + settings.slowReadLimitMs + 120_000 + settings.quietWaitMs
const interrupted = guardBenchRun('bench:streaming', log, budgetMs)

async function main(): Promise<void> {
  const { build, upstream, upstreamUrl, service, pid, idle } = await startBenchPair(settings, log, 'bench:streaming')
  const ctx: PhaseContext = {
    settings,
    meter: new CpuMeter(upstream.child, service.child, settings.quietWaitMs),
    signal: interrupted,
    log,
    serviceUrl: service.url,
    upstreamUrl,
    pid,
  }

  const firstByte = [await firstBytes(ctx, TEXT_TO_SPEECH), await firstBytes(ctx, SSE)]
  const slowRead = await slowReader(ctx)
  const uploaded = await upload(ctx)
  const cancel = await cancellations(ctx)
  // Aborted upstream requests are counted out as their promises settle: give them a moment.
  await sleep(200)
  const inFlight = await upstreamInFlight(service.url)
  const memory = await memoryOf(pid)

  const run: StreamingRun = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    service: {
      ...serviceFacts(settings, build, service, idle, memory),
      ...(inFlight !== undefined && { upstreamInFlightAfter: inFlight }),
    },
    firstByte,
    slowRead,
    upload: uploaded,
    cancel,
  }
  const md = await writeStreamingResults(run, new URL('results/', import.meta.url))
  process.stdout.write(`\n${md}\nwritten: bench/results/streaming.md, streaming.json\n`)
}

await runToExit('bench:streaming', log, interrupted, main)
