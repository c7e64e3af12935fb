/**
 * A stand-in OpenAI with OpenAI's timing, run as a child process (`node bench/upstream.ts`):
 *
 *   POST /v1/chat/completions  JSON after a delay drawn uniformly from [JSON_MIN_MS, JSON_MAX_MS];
 *                              with "stream":true, SSE: the first token after TTFT_MS, TOKENS chunks
 *                              at TOKEN_RATE per second, a finish chunk, a usage chunk when asked
 *                              (stream_options.include_usage), then [DONE]
 *   POST /v1/audio/speech      AUDIO_BYTES of audio/mpeg at AUDIO_RATE bytes/s, as fast as the reader
 *                              takes them but no faster
 *   GET  /_bench/audio         each speech stream: its id (`bench-audio-ID` in the input), bytes
 *                              sent, when it closed (epoch ms) and whether it finished
 *
 * A model whose name ends in `-instant` gets its whole answer at once (throughput and fault runs).
 * Settings are BENCH_UPSTREAM_<NAME> environment variables (defaults in SETTINGS). One interval
 * tick serves every open answer, so thousands of streams cost one timer.
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

const HEAD = '{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":'
const USAGE = '{"prompt_tokens":24,"completion_tokens":40,"total_tokens":64,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
const event = (choices: string, usage: string): string => `data: ${HEAD}${choices},"usage":${usage}}\n\n`
const WORDS = ['The ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over ', 'the ', 'lazy ', 'dog. ']
const ROLE = event('[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]', 'null')
const TOKEN_EVENTS = WORDS.map((w) => event(`[{"index":0,"delta":{"content":"${w}"},"logprobs":null,"finish_reason":null}]`, 'null'))
const FINISH = event('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]', 'null')
const USAGE_EVENT = event('[]', USAGE)
const DONE = 'data: [DONE]\n\n'
const COMPLETION = Buffer.from(
  `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"${WORDS.join('').trim()}","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":${USAGE},"service_tier":"default","system_fingerprint":"fp_06737a9306"}`,
)
/** MPEG frame headers over silence: looks like mp3 to anyone peeking. */
const AUDIO = Buffer.alloc(audioPerTick)
for (let i = 0; i < AUDIO.length - 4; i += 418) AUDIO.set([0xff, 0xfb, 0x90, 0x64], i)

/** An answer in progress: the tick writes what is due. */
interface Pending {
  res: ServerResponse
  /** When the next write is due (epoch ms). */
  due: number
  kind: 'json' | 'stream' | 'audio'
  sent: number
  usage: boolean
  audio?: AudioEntry
}
let pending: Pending[] = []
/** Every speech stream so far; `closedAt` once its connection closed. */
interface AudioEntry {
  id: string
  bytes: number
  closedAt?: number
  finished?: boolean
}
const audioLog: AudioEntry[] = []

function streamHead(res: ServerResponse, type: string): void {
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', 'transfer-encoding': 'chunked' })
}

function writeTokens(p: Pending, at: number): boolean {
  let text = p.sent === 0 ? ROLE : ''
  while (p.due <= at && p.sent < tokens) {
    text += TOKEN_EVENTS[p.sent % TOKEN_EVENTS.length]
    p.sent++
    p.due += tokenGap
  }
  if (p.sent < tokens) {
    if (text) p.res.write(text)
    return false
  }
  p.res.end(text + FINISH + (p.usage ? USAGE_EVENT : '') + DONE)
  return true
}

function writeAudio(p: Pending): boolean {
  if (p.res.writableNeedDrain) return false
  const size = Math.min(AUDIO.length, audioBytes - p.sent)
  p.sent += size
  p.audio!.bytes = p.sent
  if (p.sent < audioBytes) {
    p.res.write(AUDIO.subarray(0, size))
    return false
  }
  p.res.end(AUDIO.subarray(0, size))
  return true
}

/** Writes what is due on every open answer; returns true for those that are done. */
function step(p: Pending, at: number): boolean {
  if (p.res.destroyed) return true
  if (p.due > at) return false
  if (p.kind === 'json') {
    p.res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length }).end(COMPLETION)
    return true
  }
  return p.kind === 'stream' ? writeTokens(p, at) : writeAudio(p)
}

setInterval(() => {
  const at = now()
  pending = pending.filter((p) => !step(p, at))
}, tick)

function answer(url: string, body: Buffer, res: ServerResponse): void {
  const instant = body.includes('-instant"')
  const at = now()
  if (url === '/v1/audio/speech') {
    const audio: AudioEntry = { id: /bench-audio-(\w+)/.exec(body.toString())?.[1] ?? '?', bytes: 0 }
    audioLog.push(audio)
    res.once('close', () => Object.assign(audio, { closedAt: now(), finished: res.writableFinished }))
    streamHead(res, 'audio/mpeg')
    pending.push({ res, due: at, kind: 'audio', sent: 0, usage: false, audio })
    return
  }
  if (!body.includes('"stream":true')) {
    const p: Pending = { res, due: instant ? at : at + jsonDelay(body), kind: 'json', sent: 0, usage: false }
    if (instant) step(p, Infinity)
    else pending.push(p)
    return
  }
  streamHead(res, 'text/event-stream; charset=utf-8')
  const p: Pending = { res, due: instant ? 0 : at + ttft, kind: 'stream', sent: 0, usage: body.includes('"include_usage":true') }
  if (instant) writeTokens(p, Infinity)
  else pending.push(p)
}

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/'
  if (req.method === 'GET' && url === '/_bench/audio') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(audioLog))
    return
  }
  if (req.method !== 'POST' || (url !== '/v1/chat/completions' && url !== '/v1/audio/speech')) {
    req.resume()
    res.writeHead(404, { 'content-type': 'application/json' }).end(`{"error":{"message":"stand-in: no route ${req.method} ${url}"}}`)
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
