import { pipeline, Transform, type Readable } from 'node:stream'

/**
 * `body` as it is relayed, a copy of its chunks kept on the way: `ended` gets them once the body
 * has ended normally, or undefined when it passed `maxBytes` (copying stops there). A body cut
 * short (the caller hung up, OpenAI failed) is destroyed before its end: `ended` is never called.
 * Destroying the returned stream destroys `body` too.
 */
export function copyWhileRelaying(
  body: Readable,
  maxBytes: number,
  ended: (chunks: Buffer[] | undefined) => void,
): Readable {
  let chunks: Buffer[] | undefined = []
  let size = 0
  const copier = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length
      if (chunks && size <= maxBytes) chunks.push(chunk)
      else chunks = undefined
      callback(null, chunk)
    },
    // Called once the body's last chunk has passed; a stream destroyed first never gets here.
    flush(callback) {
      ended(chunks)
      callback()
    },
  })
  // Its failures reach the caller's side through `copier`, which the route sends.
  return pipeline(body, copier, () => undefined)
}
