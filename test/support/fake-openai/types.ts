// The stand-in's public types: what it records of a request, the behaviours a test scripts, its options.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'

export interface RecordedFile {
  filename: string
  type: string
  data: Buffer
}

export interface RecordedForm {
  /** Text parts by name (a repeated name keeps its last value; see `entries` for all). */
  fields: Record<string, string>
  /** File parts by name. */
  files: Record<string, RecordedFile>
  /** Every part in the order received. */
  entries: Array<[name: string, value: string | RecordedFile]>
}

export interface RecordedRequest {
  method: string
  /** Path including the query string, e.g. '/v1/chat/completions'. */
  path: string
  headers: IncomingHttpHeaders
  /** Exact bytes of the request body. */
  raw: Buffer
  /**
   * Parsed body when the content-type is JSON and it parsed. `any` on purpose: it is whatever the
   * client sent, and tests read the fields of the operation they called (`json.messages`) directly.
   */
  json?: any
  /** Parsed body when the content-type is multipart/form-data and it parsed. */
  form?: RecordedForm
  /** True once the client closed the connection before the stand-in finished answering. */
  aborted: boolean
  /** The `x-request-id` the stand-in answered with. */
  requestId: string
  /** Contract errors for this request (null when it satisfied the contract or was not checked). */
  contractErrors: unknown[] | null
  /** What was sent back (filled in as the answer is written; partial for truncated answers). */
  responseStatus?: number
  responseHeaders?: Record<string, string>
  responseBody?: Buffer
  /** Bytes written, for a hostile answer too large to keep (hostile.ts), which sets it instead of `responseBody`. */
  responseBytes?: number
  /** The scripted behaviour that answered this request, if any. */
  behaviour?: Behaviour
  /** The Azure deployment the path named (`/openai/deployments/{name}/...`), if it named one. */
  deployment?: string
  receivedAt: number
}

export type CustomHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  recorded: RecordedRequest,
) => void | Promise<void>

interface BehaviourBase {
  /** Only a request to this path takes the behaviour ('/v1/chat/completions' or '/chat/completions'). */
  path?: string
  /** How many requests the behaviour answers before it leaves the queue (default 1). */
  times?: number
}

/** Answer with this status; without `body`, an OpenAI error for >= 400, the normal answer for 2xx. */
export interface StatusBehaviour extends BehaviourBase {
  kind?: 'status'
  status: number
  body?: object | string
  headers?: Record<string, string>
}

export interface HangBehaviour extends BehaviourBase {
  kind: 'hang'
}

export interface ResetBehaviour extends BehaviourBase {
  kind: 'reset'
}

export interface MalformedJsonBehaviour extends BehaviourBase {
  kind: 'malformed-json'
}

export interface TruncatedStreamBehaviour extends BehaviourBase {
  kind: 'truncated-stream'
  /** How many chunks (SSE events / audio chunks) to send first (default: about half). */
  afterChunks?: number
  /** Stall (keep the connection open, send nothing more) instead of destroying the socket. */
  stall?: boolean
}

export interface SlowBehaviour extends BehaviourBase {
  kind: 'slow'
  delayMs: number
}

export interface CustomBehaviour extends BehaviourBase {
  kind: 'custom'
  handler: CustomHandler
}

/** A chat stream with a choice index, or a tool call's, far beyond what was asked for. */
export interface HugeIndexBehaviour extends BehaviourBase {
  kind: 'huge-choice-index' | 'huge-tool-call-index'
  /** Default 50,000,000. */
  index?: number
}

/** A 200 event stream whose first line is `bytes` long (default 400 MB), written as it is read. */
export interface HugeLineBehaviour extends BehaviourBase {
  kind: 'huge-line'
  bytes?: number
  /** A `data:` line (the default), which a parser buffers, or junk it may skip. */
  field?: 'data' | 'junk'
  /** End the line, then the stream with [DONE]; by default the body ends in the middle of the line. */
  terminated?: boolean
}

/**
 * A 200 answer of `bytes` in the operation's own type, written as it is read: JSON padded out,
 * audio bytes, or for a stream request 64 KiB events that never end the stream.
 */
export interface OversizeBehaviour extends BehaviourBase {
  kind: 'oversize'
  bytes: number
  /** Send Content-Length: `bytes`; by default the answer is chunked. */
  declareLength?: boolean
}

/** A 200 with another Content-Type (default `text/html`): a proxy's login page, or the answer itself relabelled. */
export interface WrongContentTypeBehaviour extends BehaviourBase {
  kind: 'wrong-content-type'
  /** null: no Content-Type at all (with `keepBody`). */
  contentType?: string | null
  /** The body (default a login page). */
  body?: string
  /** The operation's own answer, only its Content-Type changed. */
  keepBody?: boolean
}

/** An answer that repeats the bearer key the request carried, like `Incorrect API key provided: Bearer sk-…`. */
export interface EchoCredentialsBehaviour extends BehaviourBase {
  kind: 'echo-credentials'
  /**
   * Where: OpenAI's error `message` (the default, status 401), a 500 listing its request `headers`,
   * a `stream-error` event after a first delta, or an `unreadable` 200 body (or stream event).
   */
  echo?: 'message' | 'headers' | 'stream-error' | 'unreadable'
  status?: number
  /** Secrets of the stand-in's own, echoed as `Bearer <token>` and `api-key: <token>` too. */
  tokens?: string[]
}

/**
 * The operation's own answer with values replaced (wrong types, huge numbers): each mutation puts
 * `value` at one node of the JSON answer (of all its SSE events together), the node at `at`
 * (0 to 1) of the nodes in document order, the root included. Audio answers are left as they are.
 */
export interface MutatedBehaviour extends BehaviourBase {
  kind: 'mutated'
  mutations: Array<{ at: number; value: unknown }>
}

export type Behaviour =
  | StatusBehaviour
  | HangBehaviour
  | ResetBehaviour
  | MalformedJsonBehaviour
  | TruncatedStreamBehaviour
  | SlowBehaviour
  | CustomBehaviour
  | HugeIndexBehaviour
  | HugeLineBehaviour
  | OversizeBehaviour
  | WrongContentTypeBehaviour
  | EchoCredentialsBehaviour
  | MutatedBehaviour

export interface Violation {
  path: string
  errors: unknown[]
}

/**
 * Which API the stand-in speaks: OpenAI's (`/v1/...`, `Authorization: Bearer`) or Azure OpenAI's v1
 * API (`/openai/v1/...`, the key in `api-key`; also the older `/openai/deployments/{name}/...`).
 */
export type Flavour = 'openai' | 'azure'

/**
 * OpenAI's `x-ratelimit-*` headers: a field left out is not sent. A reset is a Go duration as OpenAI
 * writes it ('1s', '6m0s', '20ms'), or a number of milliseconds written as one.
 */
export interface RateLimitHeaders {
  limitRequests?: number
  remainingRequests?: number
  resetRequests?: string | number
  limitTokens?: number
  remainingTokens?: number
  resetTokens?: string | number
}

/** `limited` calls of every `of` answered 429, spread evenly and counted (never drawn at random). */
export interface RateLimitedShare {
  /** Calls of every `of` that get a 429 (default 1): `{ of: 3 }` is the third, sixth, ninth... */
  limited?: number
  of: number
  /** The 429's `Retry-After`, in seconds (default 1). */
  retryAfterSeconds?: number
  /** Only calls to this path count and get 429s ('/chat/completions' or '/v1/chat/completions'). */
  path?: string
  /** Headers added to each 429 (they win over the stand-in's own). */
  headers?: Record<string, string>
}

export interface FakeOpenAIOptions {
  /** The API it speaks (default 'openai'); 'azure' serves `/openai/v1` and takes the key in `api-key`. */
  flavour?: Flavour
  /** Check request bodies against the OpenAPI contract (default true). */
  validate?: boolean
  /** Require the flavour's key header: `Authorization: Bearer`, or Azure's `api-key` (default true). */
  requireAuth?: boolean
  /** When set, the key sent must equal it (401 otherwise). */
  apiKey?: string
  /** The models it serves (for Azure, its deployment names); others get the 404 the real API answers. */
  models?: string[]
  /** `x-ratelimit-*` headers on every successful answer from the start (see `fake.setRateLimit`). */
  rateLimit?: RateLimitHeaders
  /** A share of calls answered 429 from the start (see `fake.rateLimitShare`). */
  rateLimitedShare?: RateLimitedShare
  /** Pause between streamed chunks, in ms (default 1). */
  chunkDelayMs?: number
  /** Keep every request in `requests` (default true); off for long load runs (`fake.count()` still counts). */
  record?: boolean
}
