/**
 * The embeddings cache (`npm run bench -- --cache`): a nightly re-embedding job, the texts of a
 * catalogue sent in batches of 100 to `POST /v1/tasks/text-embeddings/batch`, a few batches at
 * once. Night 1 embeds the catalogue; by night 2 a tenth of it has changed (every tenth text, so
 * every batch has some), and night 2 runs again with everything seen. Each store (no cache,
 * memory, Redis) gets a fresh service; the embeddings stand-in here counts the calls, inputs and
 * tokens it receives, and the service's CPU is sampled around each night.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { cpus, loadavg } from 'node:os'
import pMap from 'p-map'
import { Agent, request } from 'undici'
import { freePort, measured, spawnServer, stop, usage, type Child } from './processes.ts'
import { startService, type Target } from './targets.ts'

export interface CachePlan {
  /** Texts in the catalogue, sent `batchSize` per request, `concurrency` requests at once. */
  texts: number
  batchSize: number
  concurrency: number
  /** Share of the catalogue that changes between the two nights (every 1/share-th text). */
  changedShare: number
  /** Floats per vector, printed as OpenAI prints them. */
  dimensions: number
  /** The stand-in answers after `baseMs` + `perInputMs` per input, like OpenAI's embeddings. */
  latency: { baseMs: number; perInputMs: number }
  /** Single-route requests, all hits, for the cost of one hit with its own HTTP request. */
  singleHits: number
  /** Rounds of each hit measurement, the cheapest kept. */
  rounds: number
}

export type StoreName = 'no cache' | 'memory' | 'Redis'

export interface NightResult {
  night: string
  items: number
  /** Items the answers' Cache-Status said came from the cache. */
  hits: number
  upstreamCalls: number
  inputsSent: number
  tokensSent: number
  wallS: number
  cpuS: number
  /** redis-server's CPU during the night, for the Redis store. */
  redisCpuS?: number
  peakRssMb: number
}

export interface CacheSide {
  store: StoreName
  nights: NightResult[]
  /** Outages the service logged (`cache store unavailable`): Redis silent for REDIS_COMMAND_TIMEOUT_MS. */
  outages: number
  /** Single-route requests answered from the cache: the service's CPU per request. */
  singleHit?: { requests: number; cpuUsPerRequest: number; bareUsPerRequest: number; wallS: number }
}

export interface CacheResults {
  date: string
  command: string
  machine: string
  loadBefore: number
  loadAfter: number
  node: string
  plan: CachePlan
  sides: CacheSide[]
  durationS: number
}

/** Issue 23's goal for a hit's cost. */
export const HIT_CPU_TARGET_US = 1000
const MODEL = 'text-embedding-3-small'

/** Catalogue entries of about 400 characters (some 100 tokens), deterministic. */
function catalogueText(id: number, night: number): string {
  const words = ['sturdy', 'oak', 'table', 'with', 'drawers', 'finished', 'in', 'matte', 'black', 'steel', 'frame']
  const body = Array.from({ length: 60 }, (_, i) => words[(id * 7 + i * 3) % words.length]).join(' ')
  return `Product ${id} (revision ${night}): ${body}.`
}

/** The texts of one night: a changed text every 1/changedShare-th position. */
function night(plan: CachePlan, which: 1 | 2): string[] {
  const every = Math.round(1 / plan.changedShare)
  return Array.from({ length: plan.texts }, (_, id) => catalogueText(id, id % every === every - 1 ? which : 0))
}

/** Vectors the stand-in answers with, one chosen per text: printed once, as OpenAI prints float32s. */
function vectorPool(dimensions: number, size = 64): string[] {
  let seed = 42
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1
  return Array.from({ length: size }, () => {
    const v = Array.from({ length: dimensions }, random)
    const norm = Math.hypot(...v)
    return `[${v.map((x) => String(Math.fround(x / norm))).join(',')}]`
  })
}

function poolIndex(text: string, size: number): number {
  let h = 0
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0
  return Math.abs(h) % size
}

interface StandIn {
  origin: string
  counts: { calls: number; inputs: number; tokens: number }
  close(): Promise<void>
}

/** `POST /v1/embeddings` as OpenAI answers it, after its latency, counting what it receives. */
async function startEmbeddingsStandIn(plan: CachePlan, pool: string[]): Promise<StandIn> {
  const counts = { calls: 0, inputs: 0, tokens: 0 }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
        res.writeHead(404).end()
        return
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: string | string[]; model: string }
      const inputs = Array.isArray(body.input) ? body.input : [body.input]
      const tokens = inputs.reduce((sum, text) => sum + Math.ceil(text.length / 4), 0)
      counts.calls++
      counts.inputs += inputs.length
      counts.tokens += tokens
      const data = inputs.map(
        (text, index) => `{"object":"embedding","index":${index},"embedding":${pool[poolIndex(text, pool.length)]}}`,
      )
      const answer = `{"object":"list","data":[${data.join(',')}],"model":"${body.model}","usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`
      setTimeout(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer),
        plan.latency.baseMs + plan.latency.perInputMs * inputs.length,
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    origin: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** A target for startService: only its origin matters here. */
function upstreamTarget(origin: string): Target {
  return {
    name: 'direct',
    origin,
    call: () => ({ path: '', headers: {}, body: '' }),
    marks: { token: Buffer.alloc(0), end: Buffer.alloc(0) },
  }
}

const EMBEDDING = '{"embedding":'
const DETAIL = /detail="(\d+) of (\d+) items"/

/** One night's batches through the service; checks that every output is its text's vector, in order. */
async function runNight(
  service: Target,
  texts: string[],
  plan: CachePlan,
  pool: string[],
  dispatcher: Agent,
): Promise<{ hits: number }> {
  const batches: string[][] = []
  for (let i = 0; i < texts.length; i += plan.batchSize) batches.push(texts.slice(i, i + plan.batchSize))
  let hits = 0
  await pMap(
    batches,
    async (batch) => {
      const res = await request(`${service.origin}/v1/tasks/text-embeddings/batch`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: batch.map((text) => ({ model: MODEL, text })) }),
      })
      const body = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`batch answered ${res.statusCode}: ${body.slice(0, 300)}`)
      const outputs = body.split(EMBEDDING).slice(1)
      if (outputs.length !== batch.length) throw new Error(`${outputs.length} outputs for ${batch.length} inputs`)
      outputs.forEach((output, k) => {
        if (!output.startsWith(pool[poolIndex(batch[k]!, pool.length)]!)) {
          throw new Error(`output ${k} is not its text's vector`)
        }
      })
      const detail = DETAIL.exec(String(res.headers['cache-status'] ?? ''))
      hits += detail ? Number(detail[1]) : 0
    },
    { concurrency: plan.concurrency },
  )
  return { hits }
}

async function startRedis(): Promise<Child> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  return spawnServer('redis-cache', '/usr/bin/redis-server', args, {
    port,
    env: {},
    ready: () =>
      new Promise((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      }),
  })
}

export async function cacheBenchmark(
  plan: CachePlan,
  command: string,
  log: (line: string) => void,
): Promise<CacheResults> {
  const started = performance.now()
  const loadBefore = loadavg()[0]!
  const pool = vectorPool(plan.dimensions)
  const standIn = await startEmbeddingsStandIn(plan, pool)
  const dispatcher = new Agent({ connections: plan.concurrency })
  // The all-seen night measures a hit's cost: run twice, the cheaper kept (other load only adds to it).
  const nights: Array<[name: string, texts: string[], rounds: number]> = [
    ['night 1, cold', night(plan, 1), 1],
    [`night 2, ${Math.round((1 - plan.changedShare) * 100)} % seen`, night(plan, 2), 1],
    ['night 2 again, all seen', night(plan, 2), plan.rounds],
  ]
  const sides: CacheSide[] = []
  try {
    for (const store of ['no cache', 'memory', 'Redis'] as const) {
      const redis = store === 'Redis' ? await startRedis() : undefined
      const env: Record<string, string> =
        store === 'no cache' ? { CACHE: 'off' } : redis ? { REDIS_URL: `redis://127.0.0.1:${redis.port}` } : {}
      const service = await startService(upstreamTarget(standIn.origin), env, `service, cache: ${store}`)
      const side: CacheSide = { store, nights: [], outages: 0 }
      const measureNight = async (name: string, texts: string[]): Promise<NightResult> => {
        const before = { ...standIn.counts }
        const redisBefore = redis && (await usage(redis.pid)).cpuMs
        const t0 = performance.now()
        const run = await measured(service.child.pid, () => runNight(service, texts, plan, pool, dispatcher))
        const wallS = (performance.now() - t0) / 1000
        const redisCpuS = redis && ((await usage(redis.pid)).cpuMs - redisBefore!) / 1000
        return {
          night: name,
          items: texts.length,
          hits: run.result.hits,
          upstreamCalls: standIn.counts.calls - before.calls,
          inputsSent: standIn.counts.inputs - before.inputs,
          tokensSent: standIn.counts.tokens - before.tokens,
          wallS,
          cpuS: run.cpuS!,
          ...(redisCpuS !== undefined && { redisCpuS }),
          peakRssMb: (run.peakRss ?? 0) / 2 ** 20,
        }
      }
      try {
        // Warm: the routes compiled, the connections open; texts of no night, so nothing the nights see.
        await runNight(
          service,
          Array.from({ length: plan.batchSize }, (_, i) => `warm-up ${i}`),
          plan,
          pool,
          dispatcher,
        )
        for (const [name, texts, rounds] of store === 'no cache' ? nights.slice(0, 2) : nights) {
          let kept: NightResult | undefined
          for (let round = 0; round < rounds; round++) {
            const result = await measureNight(name, texts)
            if (!kept || result.cpuS < kept.cpuS) kept = result
          }
          side.nights.push(kept!)
          log(
            `cache ${store}, ${name}: ${kept!.hits}/${kept!.items} from the cache, ${kept!.upstreamCalls} calls, ${kept!.tokensSent} tokens, ${kept!.wallS.toFixed(1)} s, CPU ${kept!.cpuS.toFixed(2)} s`,
          )
        }
        if (store !== 'no cache') side.singleHit = await singleHits(service, night(plan, 2), plan, dispatcher)
      } finally {
        await stop(service.child)
        await stop(redis)
      }
      side.outages = readFileSync(service.child.log, 'utf8').split('cache store unavailable').length - 1
      sides.push(side)
    }
  } finally {
    await dispatcher.close()
    await standIn.close()
  }
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    command,
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}`,
    loadBefore,
    loadAfter: loadavg()[0]!,
    node: process.version,
    plan,
    sides,
    durationS: (performance.now() - started) / 1000,
  }
}

/**
 * `plan.singleHits` single-route requests of texts the cache holds, and as many `GET /healthz`
 * beside them for what a bare request costs: the service's CPU per request, the cheaper of
 * `plan.rounds` rounds kept.
 */
async function singleHits(
  service: Target & { child: Child },
  texts: string[],
  plan: CachePlan,
  dispatcher: Agent,
): Promise<CacheSide['singleHit']> {
  const chosen = Array.from({ length: plan.singleHits }, (_, i) => texts[(i * 7) % texts.length]!)
  const perRequestUs = async (send: (text: string) => Promise<void>): Promise<number> => {
    let best = Infinity
    for (let round = 0; round < plan.rounds; round++) {
      const run = await measured(service.child.pid, () => pMap(chosen, send, { concurrency: plan.concurrency }))
      best = Math.min(best, (run.cpuS! * 1e6) / chosen.length)
    }
    return best
  }
  const t0 = performance.now()
  const cpuUsPerRequest = await perRequestUs(async (text) => {
    const res = await request(`${service.origin}/v1/tasks/text-embeddings`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, text }),
    })
    await res.body.dump()
    const status = String(res.headers['cache-status'] ?? '')
    if (res.statusCode !== 200 || !status.includes('; hit')) {
      throw new Error(`not a hit: ${res.statusCode} ${status}`)
    }
  })
  const wallS = (performance.now() - t0) / 1000
  const bareUsPerRequest = await perRequestUs(async () => {
    const res = await request(`${service.origin}/healthz`, { dispatcher })
    await res.body.dump()
  })
  return { requests: chosen.length, cpuUsPerRequest, bareUsPerRequest, wallS }
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US')

/** The service's CPU per item of the all-seen night: what a hit costs inside a batch. */
function hitCpuUs(side: CacheSide): number | undefined {
  const all = side.nights.find((n) => n.hits === n.items && n.items > 0)
  return all && (all.cpuS * 1e6) / all.items
}

export function cacheMarkdown(r: CacheResults): string {
  const p = r.plan
  const rows = r.sides.flatMap((side) =>
    side.nights.map(
      (n) =>
        `| ${side.store} | ${n.night} | ${int(n.hits)} / ${int(n.items)} | ${int(n.upstreamCalls)} | ${int(n.inputsSent)} | ${int(n.tokensSent)} | ${n.wallS.toFixed(1)} | ${n.cpuS.toFixed(2)}${n.redisCpuS === undefined ? '' : ` (+ Redis ${n.redisCpuS.toFixed(2)})`} | ${int((n.cpuS * 1e6) / n.items)} | ${int(n.peakRssMb)} |`,
    ),
  )
  const baseline = r.sides.find((s) => s.store === 'no cache')?.nights[1]
  const savings = r.sides
    .filter((s) => s.store !== 'no cache')
    .map((s) => {
      const warm = s.nights[1]
      if (!warm || !baseline) return `- ${s.store}: not measured`
      const pct = (a: number, b: number) => `${Math.round((1 - a / b) * 100)} %`
      const outages = s.store === 'Redis' ? `; ${s.outages} Redis outage${s.outages === 1 ? '' : 's'} logged` : ''
      return `- ${s.store}, night 2 against no cache: ${pct(warm.tokensSent, baseline.tokensSent)} fewer tokens sent (${int(warm.tokensSent)} against ${int(baseline.tokensSent)}), ${pct(warm.inputsSent, baseline.inputsSent)} fewer inputs, ${int(warm.upstreamCalls)} calls against ${int(baseline.upstreamCalls)} (the changed texts are in every batch), wall time ${warm.wallS.toFixed(1)} s against ${baseline.wallS.toFixed(1)} s, service CPU ${warm.cpuS.toFixed(2)} s against ${baseline.cpuS.toFixed(2)} s${outages}.`
    })
  const hitLines = r.sides
    .filter((s) => s.store !== 'no cache')
    .map((s) => {
      const batch = hitCpuUs(s)
      const single = s.singleHit?.cpuUsPerRequest
      const worst = Math.max(batch ?? Infinity, single ?? Infinity)
      const met = worst < HIT_CPU_TARGET_US
      const bare = s.singleHit?.bareUsPerRequest
      return `- ${met ? '**met**' : '**not met**'} (${s.store}): a hit costs well under ${HIT_CPU_TARGET_US / 1000} ms of service CPU — ${batch === undefined ? 'n/a' : int(batch)} µs per item in a batch of ${p.batchSize} all seen, ${single === undefined ? 'n/a' : int(single)} µs per single-route request (${int(s.singleHit?.requests ?? 0)} requests; a bare \`GET /healthz\` on the same connections costs ${bare === undefined ? 'n/a' : int(bare)} µs)`
    })
  return [
    '# Embeddings cache: a nightly re-embedding job',
    '',
    `\`${r.command}\`, ${r.date}, Node ${r.node}, ${r.machine}, load average ${r.loadBefore.toFixed(1)} before and ${r.loadAfter.toFixed(1)} after (${r.durationS.toFixed(0)} s).`,
    '',
    `A catalogue of ${int(p.texts)} texts (about 400 characters, some 100 tokens each) embedded with \`${MODEL}\` (${int(p.dimensions)} floats per vector, printed as OpenAI prints them: about ${Math.round((p.dimensions * 20) / 1000)} kB of JSON each) in batches of ${p.batchSize}, ${p.concurrency} batches at once, through \`POST /v1/tasks/text-embeddings/batch\`. Between night 1 and night 2, ${Math.round(p.changedShare * 100)} % of the texts change (every ${Math.round(1 / p.changedShare)}th, so every batch has some); night 2 then runs again. The stand-in answers after ${p.latency.baseMs} ms + ${p.latency.perInputMs} ms per input and counts what it gets (tokens: characters / 4). Each store gets a fresh service (\`CACHE=off\`; the default, in memory; \`REDIS_URL\` to a fresh \`redis-server\`), warmed with one batch of other texts. CPU: the service process's user + system time during the night (\`pidusage\`); everything shares the machine's cores.`,
    '',
    ...hitLines,
    '',
    ...savings,
    '',
    '| store | night | from the cache | upstream calls | inputs sent | tokens sent | wall s | service CPU s | CPU per item µs | peak RSS MB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'The cold night with a cache costs what it costs without one, plus storing each answer (in memory: a copy of its bytes; in Redis: a pipeline of SETs of some 3 MB per batch). The CPU per item of the all-seen night is what a hit costs inside a batch: validating the item, the key digest, the lookup, copying the stored bytes into the answer and writing it to the socket. A Redis outage (Redis silent for `REDIS_COMMAND_TIMEOUT_MS`, 100 ms, which a machine this busy can cause) turns the lookups and stores of the batches it meets into misses: those items went to OpenAI.',
    '',
  ].join('\n')
}
