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
 * test/support/README.md maps the modules of this folder and says how to add an operation.
 */
import { fakeImageBytes } from './content.ts'
import { loadOpenAIContract } from './contract.ts'
import { normalizePath } from './request.ts'
import { startServer } from './server.ts'
import type { Behaviour, CustomHandler, FakeOpenAIOptions, RecordedRequest, Violation } from './types.ts'

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
export { openAICompatibleChat, type CompatibleChatOptions } from './openai-compatible.ts'
export { SPEECH_CONTENT_TYPES } from './speech.ts'

export interface FakeOpenAI {
  /** Base URL including '/v1', e.g. 'http://127.0.0.1:54321/v1'. */
  url: string
  /** 'http://127.0.0.1:54321' */
  origin: string
  requests: RecordedRequest[]
  violations: Violation[]
  /** The PNG every image answer carries (output_format png). */
  png: Buffer
  enqueue(b: Behaviour): void
  /** Number of scripted behaviours not yet used. */
  pendingBehaviours(): number
  /** Replace the default answer for a path persistently (undefined restores the default). */
  setHandler(path: string, handler: CustomHandler | undefined): void
  /** Clear requests, violations and the behaviour queue (handlers from setHandler stay). */
  reset(): void
  /** Close the server and destroy every open socket (hung ones too). */
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
  const standIn = await startServer({
    validate,
    requireAuth: opts.requireAuth !== false,
    apiKey: opts.apiKey,
    chunkDelayMs: opts.chunkDelayMs ?? 1,
    record: opts.record !== false,
  })
  const { requests, violations, behaviours, handlers } = standIn
  return {
    url: `${standIn.origin}/v1`,
    origin: standIn.origin,
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
    reset() {
      requests.length = 0
      violations.length = 0
      behaviours.clear()
    },
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
