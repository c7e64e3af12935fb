/** The streaming bench's client side: first-byte timing, a slow reader, a multipart upload, an abort. */
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { request, type Agent, type ClientRequest, type IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RequestSpec } from './scenarios.ts'

const REQUEST_TIMEOUT_MS = 10_000

/** Sends `spec`; resolves with the response once its headers are in. */
function send(spec: RequestSpec, agent: Agent | false, timeoutMs = REQUEST_TIMEOUT_MS): { req: ClientRequest; res: Promise<IncomingMessage> } {
  const req = request(spec.url, {
    method: 'POST',
    headers: { ...spec.headers, 'content-length': String(Buffer.byteLength(spec.body)) },
    agent,
  })
  req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from ${spec.url} within ${timeoutMs} ms`)))
  const res = new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject))
  // A caller that drops the request on purpose may never await it.
  res.catch(() => {})
  req.end(spec.body)
  return { req, res }
}

function expect200(res: IncomingMessage, url: string): void {
  if (res.statusCode !== 200) {
    res.resume()
    throw new Error(`${url} answered ${res.statusCode}`)
  }
}

/** Milliseconds from sending the request to its first body byte; the rest is read and dropped. */
export async function firstByteMs(spec: RequestSpec, agent: Agent): Promise<number> {
  const started = performance.now()
  const res = await send(spec, agent).res
  expect200(res, spec.url)
  let first = NaN
  res.once('data', () => (first = performance.now() - started))
  res.resume()
  await once(res, 'end')
  return first
}

/** Reads the answer at about `bytesPerSec`, pausing the socket when ahead; gives up after `timeoutMs`. */
export async function slowRead(spec: RequestSpec, bytesPerSec: number, timeoutMs: number): Promise<{ bytes: number; ms: number }> {
  const started = performance.now()
  const { req, res: pending } = send(spec, false, timeoutMs)
  const res = await pending
  expect200(res, spec.url)
  const deadline = setTimeout(() => req.destroy(new Error(`slow read still going after ${timeoutMs} ms`)), timeoutMs)
  let bytes = 0
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      bytes += chunk.length
      const ahead = (bytes / bytesPerSec) * 1000 - (performance.now() - started)
      if (ahead > 0) await sleep(ahead)
    }
  } finally {
    clearTimeout(deadline)
  }
  return { bytes, ms: performance.now() - started }
}

export interface Upload {
  url: string
  /** The file part: form field, file on disk, its size, the name and type announced. */
  file: { field: string; path: string; size: number; filename: string; type: string }
  fields: Record<string, string>
}

/** A multipart/form-data POST, the file streamed from disk (as `curl -F field=@file` does). */
export async function uploadMultipart(upload: Upload, timeoutMs: number): Promise<{ status: number; body: string; ms: number }> {
  const boundary = `----bench${Date.now().toString(16)}`
  const { file } = upload
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${file.field}"; filename="${file.filename}"\r\n` +
      `Content-Type: ${file.type}\r\n\r\n`,
  )
  const tail = Buffer.from(
    Object.entries(upload.fields)
      .map(([name, value]) => `\r\n--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}`)
      .join('') + `\r\n--${boundary}--\r\n`,
  )
  const started = performance.now()
  const req = request(upload.url, {
    method: 'POST',
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + file.size + tail.length),
    },
    agent: false,
  })
  req.setTimeout(timeoutMs, () => req.destroy(new Error(`upload to ${upload.url} still going after ${timeoutMs} ms`)))
  const response = new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject))
  req.write(head)
  for await (const chunk of createReadStream(file.path)) {
    if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response])
  }
  req.end(tail)
  const res = await response
  let body = ''
  for await (const chunk of res) body += chunk
  return { status: res.statusCode ?? 0, body, ms: performance.now() - started }
}

/** When the bench upstream saw the held request `id` arrive or close (hrtime ns), or undefined after 5 s. */
async function heldAt(upstreamUrl: string, id: string, event: 'received' | 'closed'): Promise<bigint | undefined> {
  const res = await fetch(`${upstreamUrl}/_bench/held?id=${id}&event=${event}`, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) {
    await res.arrayBuffer()
    return undefined
  }
  return BigInt(((await res.json()) as { at: string }).at)
}

/**
 * One cancellation: the request (holding `bench-hold-<id>`) goes through the service to the
 * upstream, which holds it; once it is there — its first bytes back for a stream, the upstream
 * saying so for JSON — the client drops the connection. Resolves to the milliseconds until the
 * upstream saw its own connection close (NaN: not within 5 s).
 */
export async function cancelOnce(spec: RequestSpec, upstreamUrl: string, id: string, stream: boolean): Promise<number> {
  const { req, res } = send(spec, false)
  req.on('error', () => {})
  if (stream) {
    const answer = await res
    expect200(answer, spec.url)
    answer.on('error', () => {})
    await once(answer, 'data')
  } else if ((await heldAt(upstreamUrl, id, 'received')) === undefined) {
    req.destroy()
    throw new Error(`held request ${id} never reached the upstream`)
  }
  const abortedAt = process.hrtime.bigint()
  req.destroy()
  const closedAt = await heldAt(upstreamUrl, id, 'closed')
  return closedAt === undefined ? NaN : Number(closedAt - abortedAt) / 1e6
}
