// An answer before it is written: status, headers and the chunks of its body.

export interface Reply {
  status: number
  headers: Record<string, string>
  /** Written one after another with a short pause; a single chunk gets a content-length. */
  chunks: Buffer[]
  streamed: boolean
}

export const JSON_TYPE = 'application/json'
const SSE_TYPE = 'text/event-stream; charset=utf-8'

/** A whole body of one content-type. */
export function bodyReply(status: number, contentType: string, body: Buffer | string): Reply {
  return { status, headers: { 'content-type': contentType }, chunks: [Buffer.from(body)], streamed: false }
}

export function jsonReply(status: number, body: unknown): Reply {
  return bodyReply(status, JSON_TYPE, JSON.stringify(body))
}

/** Server-Sent Events, one chunk each, ended by `data: [DONE]` unless `done` is false. */
export function sseReply(events: unknown[], done = true): Reply {
  const chunks = events.map((e) => Buffer.from(`data: ${JSON.stringify(e)}\n\n`))
  if (done) chunks.push(Buffer.from('data: [DONE]\n\n'))
  return { status: 200, headers: { 'content-type': SSE_TYPE, 'cache-control': 'no-cache' }, chunks, streamed: true }
}
