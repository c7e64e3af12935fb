/**
 * A stand-in for the OpenAI REST API, for tests.
 *
 * A real HTTP server (node:http, 127.0.0.1, ephemeral port) that answers the operations our
 * service calls the way OpenAI does (operations.ts), records every request byte-for-byte, and
 * checks each request against OpenAI's contract (test/contract/, compiled by contract.ts).
 * Breaches get OpenAI's 400/401 and are collected in `fake.violations`, so a test can end with
 * `assert.deepEqual(fake.violations, [])`. Faults are scripted with `fake.enqueue(...)` (FIFO,
 * optionally per path; behaviours.ts); a scripted behaviour wins over the 400/401 a bad request
 * would get (the breach is still recorded). A hostile upstream's answers are behaviours too
 * (hostile.ts): `fake.enqueue({ kind: 'huge-line' })`, `{ kind: 'echo-credentials' }`, ….
 *
 *   const fake = await startFakeOpenAI()            // contract loaded + compiled here, once per process
 *   // point the service at fake.url ('http://127.0.0.1:PORT/v1') with any 'Bearer ...' key
 *   fake.enqueue({ status: 429, headers: { 'retry-after': '7' }, body: openAIError(429, 'Rate limit reached') })
 *   ...
 *   assert.deepEqual(fake.violations, [])
 *   assert.deepEqual(fake.lastRequest()!.json, {...})   // what reached "OpenAI"
 *   await fake.close()
 *
 * Several at once, one per deployment (each has its own requests, counts and script):
 *
 *   const azure = await startFakeOpenAI({ flavour: 'azure', apiKey: 'az-key' })
 *   // azure.url is 'http://127.0.0.1:PORT/openai/v1'; the key must come in `api-key` (an
 *   // Authorization header is a 401 and a violation); `model` is the deployment name
 *   fake.setRateLimit({ remainingRequests: 0, resetRequests: '1s' })   // x-ratelimit-* on every success
 *   fake.rateLimitShare({ of: 3 })          // every third call: 429, Retry-After: 1 (deterministic)
 *   fake.rateLimitFor(3000)                 // every call 429 for 3 s (Azure: retry-after-ms too)
 *   await fake.stop(); await fake.restart() // unreachable (ECONNREFUSED), then back on the same port
 *   fake.count('/chat/completions')         // counted even with { record: false }
 *
 * test/support/README.md maps the modules of this folder and says how to add an operation.
 */
import { fakeImageBytes } from './content.ts'
import { loadOpenAIContract } from './contract.ts'
import { FLAVOURS } from './flavours.ts'
import { RateLimits } from './rate-limits.ts'
import { normalizePath, pathMatches } from './request.ts'
import { startServer } from './server.ts'
import type {
  Behaviour,
  CustomHandler,
  FakeOpenAIOptions,
  Flavour,
  RateLimitedShare,
  RateLimitHeaders,
  RecordedRequest,
  Violation,
} from './types.ts'

export type * from './types.ts'
export { expectedSpeechBytes, fakeImageBytes } from './content.ts'
export {
  contractStats,
  loadOpenAIContract,
  validateAgainstOpenAIContract,
  validateOpenAIComponent,
  validateOpenAIResponse,
  type ContractStats,
} from './contract.ts'
export { formToContractObject } from './contract-form.ts'
export { openAIError } from './errors.ts'
export { AZURE_ACCESS_DENIED } from './azure.ts'
export { goDuration } from './rate-limits.ts'
export { openAICompatibleChat, type CompatibleChatOptions } from './openai-compatible.ts'
export { SPEECH_CONTENT_TYPES } from './speech.ts'

export interface FakeOpenAI {
  /** Base URL: 'http://127.0.0.1:54321/v1', or for Azure 'http://127.0.0.1:54321/openai/v1'. */
  url: string
  /** 'http://127.0.0.1:54321' */
  origin: string
  /** Its port, the same after `restart()`. */
  port: number
  flavour: Flavour
  /** This stand-in's requests alone (each stand-in has its own), unless started with `record: false`. */
  requests: RecordedRequest[]
  violations: Violation[]
  /** The PNG every image answer carries (output_format png). */
  png: Buffer
  enqueue(b: Behaviour): void
  /** Number of scripted behaviours not yet used. */
  pendingBehaviours(): number
  /** Replace the default answer for a path persistently (undefined restores the default). */
  setHandler(path: string, handler: CustomHandler | undefined): void
  /**
   * Requests received, recorded or not (`record: false`), or those to `path` ('/chat/completions',
   * '/v1/chat/completions' or Azure's '/openai/v1/chat/completions'); `reset()` zeroes it.
   */
  count(path?: string): number
  /** `x-ratelimit-*` headers on every successful answer from now on (undefined: none). */
  setRateLimit(limits: RateLimitHeaders | undefined): void
  /** Answer 429 to `limited` of every `of` calls, counted from now (undefined: stop). */
  rateLimitShare(share: RateLimitedShare | undefined): void
  /** Answer every call 429 for the next `ms`, its `Retry-After` the time left, with these headers too. */
  rateLimitFor(ms: number, headers?: Record<string, string>): void
  /**
   * Clear requests, counts, violations, the behaviour queue, a rateLimitFor period and the share's
   * count (setHandler, setRateLimit and rateLimitShare stay).
   */
  reset(): void
  /** Stop listening (connecting is refused) and destroy every open socket, keeping what was recorded. */
  stop(): Promise<void>
  /** Listen again on the same port after `stop()` (rejects if the port was taken meanwhile). */
  restart(): Promise<void>
  /** Close the server and destroy every open socket (hung ones too); no restart after it. */
  close(): Promise<void>
  lastRequest(): RecordedRequest | undefined
  /** Resolve once at least `count` requests were recorded (rejects after timeoutMs). */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>
  /** Resolve once `condition()` is true (polled; rejects after timeoutMs). */
  waitFor(condition: () => boolean, timeoutMs?: number): Promise<void>
}

/** Resolve once `condition()` is true, polling every 5 ms; reject after `timeoutMs` or when it throws. */
function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const start = Date.now()
    const tick = (): void => {
      let ok = false
      try {
        ok = condition()
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)))
        return
      }
      if (ok) resolve()
      else if (Date.now() - start < timeoutMs) setTimeout(tick, 5)
      else reject(new Error(`fake-openai: condition not met within ${timeoutMs} ms`))
    }
    tick()
  })
}

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const validate = opts.validate !== false
  // Load + compile before the first request, so a test's client timeout never races the parse.
  if (validate) loadOpenAIContract()
  const png = await fakeImageBytes('png')
  const flavour = FLAVOURS[opts.flavour ?? 'openai']
  const rateLimits = new RateLimits()
  rateLimits.setHeaders(opts.rateLimit)
  rateLimits.setShare(opts.rateLimitedShare)
  const standIn = await startServer({
    flavour,
    validate,
    requireAuth: opts.requireAuth !== false,
    apiKey: opts.apiKey,
    models: opts.models && new Set(opts.models),
    chunkDelayMs: opts.chunkDelayMs ?? 1,
    record: opts.record !== false,
    rateLimits,
  })
  const { requests, counts, violations, behaviours, handlers } = standIn
  return {
    url: `${standIn.origin}${flavour.basePath}`,
    origin: standIn.origin,
    port: standIn.port,
    flavour: flavour.name,
    requests,
    violations,
    png,
    enqueue: (b) => behaviours.push(b),
    pendingBehaviours: () => behaviours.length,
    setHandler(path, handler) {
      const p = normalizePath(path)
      if (handler) handlers.set(p, handler)
      else handlers.delete(p)
    },
    count(path) {
      let n = 0
      for (const [p, c] of counts) if (path === undefined || pathMatches(path, p)) n += c
      return n
    },
    setRateLimit: (limits) => rateLimits.setHeaders(limits),
    rateLimitShare: (share) => rateLimits.setShare(share),
    rateLimitFor: (ms, headers) => rateLimits.limitFor(ms, headers),
    reset() {
      requests.length = 0
      counts.clear()
      violations.length = 0
      behaviours.clear()
      rateLimits.reset()
    },
    stop: () => standIn.stop(),
    restart: () => standIn.restart(),
    close: () => standIn.close(),
    lastRequest: () => requests[requests.length - 1],
    async waitForRequests(count, timeoutMs = 2000) {
      await waitFor(() => requests.length >= count, timeoutMs).catch(() => {
        throw new Error(`fake-openai: expected ${count} request(s) within ${timeoutMs} ms, got ${requests.length}`)
      })
      return requests
    },
    waitFor: (condition, timeoutMs = 2000) => waitFor(condition, timeoutMs),
  }
}
