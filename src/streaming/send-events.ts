import type { FastifyReply } from 'fastify'
import type { SseStream } from './sse.ts'

/**
 * Answers with an event stream the relay writes into the response itself: no Node stream sits
 * between OpenAI's body and the socket. The reply is hijacked, so Fastify's onSend hooks do not
 * run for it; the headers set on the reply so far go out with the stream's own. onResponse hooks
 * and the completion log line still come when the response ends.
 */
export function sendEvents(
  reply: FastifyReply,
  {
    contentType,
    headers,
    body,
  }: { contentType: string; headers?: Record<string, string> | undefined; body: SseStream },
): FastifyReply {
  reply.hijack()
  const res = reply.raw
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value)
  for (const [name, value] of Object.entries(headers ?? {})) res.setHeader(name, value)
  res.setHeader('content-type', contentType)
  body.into(res)
  return reply
}
