import { finished, pipeline, Transform, type Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { answerTooLarge } from './upstream-errors.ts'

/** The answer's declared Content-Length, when it has a usable one. */
function declaredLength(headers: Dispatcher.ResponseData['headers']): number | undefined {
  const value = headers['content-length']
  const length = typeof value === 'string' ? Number(value) : NaN
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** A 502 at once, with the body destroyed unread, for an answer that says it is over `maxBytes`. */
export function refuseDeclaredOversize(res: Dispatcher.ResponseData, maxBytes: number, what: string): void {
  const length = declaredLength(res.headers)
  if (length === undefined || length <= maxBytes) return
  res.body.destroy()
  throw answerTooLarge(what, maxBytes)
}

/**
 * The whole body, or a 502 once it passes `maxBytes` (the body is destroyed, so nothing more is
 * read). Other failures of the body are thrown as they come.
 */
export async function readBounded(res: Dispatcher.ResponseData, maxBytes: number, what: string): Promise<Buffer> {
  refuseDeclaredOversize(res, maxBytes, what)
  const { body } = res
  // Plain listeners: an async iterator, or finished(), allocates about 1 KB on every JSON answer.
  return new Promise((resolve, reject) => {
    if (body.destroyed) return failure(body, reject)
    const chunks: Buffer[] = []
    let size = 0
    body.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) chunks.push(chunk)
      else if (!body.destroyed) {
        body.destroy()
        reject(answerTooLarge(what, maxBytes))
      }
    })
    body.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    body.on('error', reject)
    // Closed before its end without an error (after one, this changes nothing).
    body.on('close', () => {
      if (!body.readableEnded) failure(body, reject)
    })
  })
}

/** Why a body failed or was cut off, in the stream helpers' words (a premature close): only off the usual path. */
function failure(body: Readable, reject: (err: unknown) => void): void {
  finished(body, (err) => reject(err))
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
