import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import pMap from 'p-map'
import { Pool } from 'undici'
import openaiTasksApp from '../app.ts'
import { loadConfig } from '../config.ts'
import { serverOptions } from '../server-options.ts'
import { startWarmUpUpstream, WARM_UP_MODEL } from './warm-up-upstream.ts'

export interface WarmUpResult {
  /** Calls answered, whatever their status. */
  calls: number
  /** Calls not answered 200: none, unless the app or this warm-up is broken. */
  failed: number
  ms: number
}

/** Calls in flight at once: enough for the code of many open calls to run, as a burst has it. */
const CONCURRENCY = 256
/** The warm-up gives up after this long: a slow machine starts a little colder, never late. */
const TIME_LIMIT_MS = 15_000

const CHAT = { path: '/v1/tasks/text-generation', body: JSON.stringify({ model: WARM_UP_MODEL, prompt: 'warm up' }) }
const EMBEDDINGS = {
  path: '/v1/tasks/text-embeddings',
  body: JSON.stringify({ model: 'text-embedding-3-small', text: 'warm up' }),
}
/** The mix the calls cycle through: streams most, as they hold a process longest. */
const CALLS = [
  { ...CHAT, accept: 'text/event-stream' },
  { ...CHAT, accept: 'application/json' },
  { ...CHAT, accept: 'text/event-stream' },
  { ...EMBEDDINGS, accept: 'application/json' },
]

/**
 * Runs `calls` task requests through a throwaway copy of the app, over loopback sockets, against an
 * instant OpenAI stand-in of its own, before the real app exists: V8 compiles the route, relay and
 * client code, and the heap grows, before the first burst rather than during it (bench/README.md,
 * The start-up warm-up). The copy has no logger, cache or Redis of the real one, and tracing has
 * not started: nothing of it is counted, billed, logged or traced.
 */
export async function warmUp(calls: number): Promise<WarmUpResult> {
  const started = performance.now()
  const upstream = await startWarmUpUpstream()
  const config = loadConfig({
    OPENAI_BASE_URL: upstream.baseUrl,
    OPENAI_API_KEY: 'sk-warm-up',
    HOST: '127.0.0.1',
    CACHE: 'off',
    IDLE_MEMORY_RELEASE_MS: '0',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    MAX_CONCURRENT_UPSTREAM: '0',
    OTEL_SDK_DISABLED: 'true',
  })
  const app = Fastify(serverOptions(config, { enabled: false }))
  let pool: Pool | undefined
  let answered = 0
  let failed = 0
  try {
    await app.register(fp(openaiTasksApp), { config })
    await app.listen({ host: '127.0.0.1', port: 0, exclusive: true })
    const { port } = app.server.address() as AddressInfo
    pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY })
    const client = pool
    const signal = AbortSignal.timeout(TIME_LIMIT_MS)
    await pMap(
      Array.from({ length: calls }, (_, i) => CALLS[i % CALLS.length]!),
      async ({ path, accept, body }) => {
        const answer = await client.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json', accept },
          body,
          signal,
        })
        await answer.body.text()
        answered++
        if (answer.statusCode !== 200) failed++
      },
      { concurrency: CONCURRENCY, signal },
    ).catch(() => undefined) // the time limit, or a refused socket: what ran is warm all the same
  } finally {
    await pool?.close()
    await app.close()
    await upstream.close()
  }
  return { calls: answered, failed: failed + (calls - answered), ms: Math.round(performance.now() - started) }
}
