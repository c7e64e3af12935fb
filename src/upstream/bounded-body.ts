import type { IncomingHttpHeaders } from 'node:http'
import { pipeline, Transform, type Readable } from 'node:stream'
import { answerTooLarge } from './upstream-errors.ts'
import { readWhole, type UpstreamAnswer } from './upstream-answer.ts'

/** The answer's declared Content-Length, when it has a usable one. */
function declaredLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['content-length']
  const length = typeof value === 'string' ? Number(value) : NaN
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** A 502 at once, with the body destroyed unread, for an answer that says it is over `maxBytes`. */
export function refuseDeclaredOversize(res: UpstreamAnswer, maxBytes: number, what: string): void {
  const length = declaredLength(res.headers)
  if (length === undefined || length <= maxBytes) return
  res.body.destroy()
  throw answerTooLarge(what, maxBytes)
}

/**
 * The whole body, or a 502 once it passes `maxBytes` (the body is destroyed, so nothing more is
 * read). Other failures of the body are thrown as they come.
 */
export async function readBounded(res: UpstreamAnswer, maxBytes: number, what: string): Promise<Buffer> {
  refuseDeclaredOversize(res, maxBytes, what)
  return readWhole(res.body, maxBytes, () => answerTooLarge(what, maxBytes))
}

/**
 * The body relayed as it comes, for answers piped to the caller: past `maxBytes` it fails with
 * a 502 (the caller's answer is cut short: a byte stream has no error event) and the body is
 * destroyed. Destroying the returned stream destroys the body too.
 */
export function relayBounded(body: Readable, maxBytes: number, what: string): Readable {
  let size = 0
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length
      if (size > maxBytes) callback(answerTooLarge(what, maxBytes))
      else callback(null, chunk)
    },
  })
  // Its failures reach the caller's side through `counter`, which the route sends.
  return pipeline(body, counter, () => undefined)
}
