/**
 * A stand-in OpenAI with OpenAI's timing, run as a child process (`node bench/upstream.ts`):
 *
 *   POST /v1/chat/completions  JSON after a delay spread evenly over [JSON_MIN_MS, JSON_MAX_MS];
 *                              with "stream":true, SSE: the first token after TTFT_MS, TOKENS chunks
 *                              at TOKEN_RATE per second, a finish chunk, a usage chunk when asked
 *                              (stream_options.include_usage), then [DONE]
 *   POST /v1/audio/speech      AUDIO_BYTES of audio/mpeg at AUDIO_RATE bytes/s, as fast as the reader
 *                              takes them but no faster
 *   GET  /_bench/audio         each speech stream: its id (`bench-audio-ID` in the input), bytes
 *                              sent, when it closed (epoch ms) and whether it finished
 *   GET  /_bench/chat          chat calls received so far, and how many were answered 429
 *
 * A model whose name ends in `-instant` gets its whole answer at once (throughput and fault runs).
 * With RATE_LIMIT_EVERY=N (0: never), every Nth chat call, by a counter, is answered at once with
 * OpenAI's 429 (`Retry-After: RATE_LIMIT_RETRY_AFTER_S`): a deployment whose key is rate limited.
 * Settings are BENCH_UPSTREAM_<NAME> environment variables (defaults in SETTINGS).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const SETTINGS = {
  JSON_MIN_MS: 1000,
  JSON_MAX_MS: 4000,
  TTFT_MS: 500,
  TOKENS: 40,
  TOKEN_RATE: 10,
  AUDIO_BYTES: 32 * 1024 * 1024,
  AUDIO_RATE: 2 * 1024 * 1024,
  TICK_MS: 10,
  KEEP_ALIVE_MS: 10_000,
  RATE_LIMIT_EVERY: 0,
  RATE_LIMIT_RETRY_AFTER_S: 1,
}
const setting = (name: keyof typeof SETTINGS): number => Number(process.env[`BENCH_UPSTREAM_${name}`] ?? SETTINGS[name])
const jsonMin = setting('JSON_MIN_MS')
const jsonMax = setting('JSON_MAX_MS')
const ttft = setting('TTFT_MS')
const tokens = setting('TOKENS')
const tokenGap = 1000 / setting('TOKEN_RATE')
const audioBytes = setting('AUDIO_BYTES')
const tick = setting('TICK_MS')
const audioPerTick = Math.max(1, Math.round((setting('AUDIO_RATE') * tick) / 1000))
const rateLimitEvery = setting('RATE_LIMIT_EVERY')
const retryAfterS = setting('RATE_LIMIT_RETRY_AFTER_S')

const now = (): number => performance.timeOrigin + performance.now()
/**
 * A JSON answer's delay: the golden-ratio sequence at the call's number (`(call N)` in the prompt,
 * else the next one), so N calls cover [min, max] evenly and every side of a comparison gets the
 * very same delays — independent random draws would move p50 and p99 from run to run.
 */
let calls = 0
const CALL = /\(call (\d+)\)/
function jsonDelay(body: Buffer): number {
  const n = Number(CALL.exec(body.toString())?.[1] ?? ++calls)
  return jsonMin + ((n * 0.6180339887498949) % 1) * (jsonMax - jsonMin)
}

const HEAD =
  '{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":'
const USAGE =
  '{"prompt_tokens":24,"completion_tokens":40,"total_tokens":64,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
const event = (choices: string, usage: string): string => `data: ${HEAD}${choices},"usage":${usage}}\n\n`
const WORDS = ['The ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over ', 'the ', 'lazy ', 'dog. ']
const ROLE = event(
  '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]',
  'null',
)
const TOKEN_EVENTS = WORDS.map((w) =>
  event(`[{"index":0,"delta":{"content":"${w}"},"logprobs":null,"finish_reason":null}]`, 'null'),
)
const FINISH = event('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]', 'null')
const USAGE_EVENT = event('[]', USAGE)
const DONE = 'data: [DONE]\n\n'
const COMPLETION = Buffer.from(
  `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"${WORDS.join('').trim()}","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":${USAGE},"service_tier":"default","system_fingerprint":"fp_06737a9306"}`,
)
// OpenAI's answer when a key is out of requests, with the one header of it the service reads.
const RATE_LIMITED = Buffer.from(
  '{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-bench on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
)
/** Chat calls received, and those answered 429 (every RATE_LIMIT_EVERY-th). */
const chat = { calls: 0, rateLimited: 0 }
/** MPEG frame headers over silence: looks like mp3 to anyone peeking. */
const AUDIO = Buffer.alloc(audioPerTick)
for (let i = 0; i < AUDIO.length - 4; i += 418) AUDIO.set([0xff, 0xfb, 0x90, 0x64], i)

/** An answer in progress: writes what is due at `at`, and says whether it is done. */
type Answer = (at: number) => boolean
let open: Answer[] = []
// One tick for every open answer: thousands of streams cost one timer, not one per token.
setInterval(() => {
  const at = now()
  open = open.filter((answer) => !answer(at))
}, tick)

/** Every speech stream so far; `closedAt` once its connection closed. */
const audioLog: Array<{ id: string; bytes: number; closedAt?: number; finished?: boolean }> = []

function json(res: ServerResponse, due: number): Answer {
  return (at) => {
    if (res.destroyed) return true
    if (at < due) return false
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length }).end(COMPLETION)
    return true
  }
}

function stream(res: ServerResponse, firstAt: number, usage: boolean): Answer {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  let sent = 0
  let due = firstAt
  return (at) => {
    if (res.destroyed) return true
    let text = sent === 0 && due <= at ? ROLE : ''
    for (; due <= at && sent < tokens; sent++, due += tokenGap) text += TOKEN_EVENTS[sent % TOKEN_EVENTS.length]
    if (sent < tokens) {
      if (text) res.write(text)
      return false
    }
    res.end(text + FINISH + (usage ? USAGE_EVENT : '') + DONE)
    return true
  }
}

function audio(res: ServerResponse, id: string): Answer {
  res.writeHead(200, { 'content-type': 'audio/mpeg' })
  const entry: (typeof audioLog)[number] = { id, bytes: 0 }
  audioLog.push(entry)
  res.once('close', () => Object.assign(entry, { closedAt: now(), finished: res.writableFinished }))
  return () => {
    if (res.destroyed) return true
    if (res.writableNeedDrain) return false
    const chunk = AUDIO.subarray(0, Math.min(AUDIO.length, audioBytes - entry.bytes))
    entry.bytes += chunk.length
    if (entry.bytes < audioBytes) res.write(chunk)
    else res.end(chunk)
    return entry.bytes >= audioBytes
  }
}

function answer(url: string, body: Buffer, res: ServerResponse): void {
  const n = url === '/v1/chat/completions' ? ++chat.calls : 0
  if (rateLimitEvery > 0 && n > 0 && n % rateLimitEvery === 0) {
    chat.rateLimited++
    res
      .writeHead(429, {
        'content-type': 'application/json',
        'content-length': RATE_LIMITED.length,
        'retry-after': String(retryAfterS),
      })
      .end(RATE_LIMITED)
    return
  }
  const instant = body.includes('-instant"')
  const at = now()
  const next =
    url === '/v1/audio/speech'
      ? audio(res, /bench-audio-(\w+)/.exec(body.toString())?.[1] ?? '?')
      : body.includes('"stream":true')
        ? stream(res, instant ? at : at + ttft, body.includes('"include_usage":true'))
        : json(res, instant ? at : at + jsonDelay(body))
  if (!(instant && next(Infinity))) open.push(next)
}

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  if (req.method === 'GET' && url === '/_bench/audio') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(audioLog))
    return
  }
  if (req.method === 'GET' && url === '/_bench/chat') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(chat))
    return
  }
  if (req.method !== 'POST' || (url !== '/v1/chat/completions' && url !== '/v1/audio/speech')) {
    req.resume()
    res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(`{"error":{"message":"stand-in: no route ${req.method} ${url}"}}`)
    return
  }
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => answer(url, Buffer.concat(chunks), res))
}

const server = createServer(route)
// Idle connections from the proxies go after this, so three proxies' pools do not all stay open.
server.keepAliveTimeout = setting('KEEP_ALIVE_MS')
server.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1', backlog: 65_535 }, () => {
  const { port } = server.address() as AddressInfo
  if (process.send) process.send({ port })
  else console.log(`stand-in OpenAI on http://127.0.0.1:${port}/v1`)
})

process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
