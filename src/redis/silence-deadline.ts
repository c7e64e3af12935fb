import type { Redis } from 'ioredis'

/** A command given up on: Redis sent nothing for the silence allowed. */
export class RedisSilentError extends Error {
  constructor(ms: number) {
    super(`Redis sent nothing for ${ms} ms`)
  }
}

/**
 * Wraps a command of `redis` so that it fails once Redis has sent nothing at all for `silenceMs`
 * while it waited: a large reply still arriving, or one queued behind others that are, is not a
 * frozen Redis, and a timer that fired late because the event loop was busy is not one either.
 * The verdict is taken after the event loop's poll phase (setImmediate), once the bytes already
 * in the socket have been read.
 */
export function silenceDeadline(redis: Redis, silenceMs: number): <T>(command: Promise<T>) => Promise<T> {
  let lastDataAt = 0
  const heard = () => (lastDataAt = performance.now())
  // A new socket on every (re)connection.
  redis.on('connect', () => redis.stream.on('data', heard))
  return <T>(command: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const sentAt = performance.now()
      let settled = false
      let timer: NodeJS.Timeout | undefined
      const judge = () =>
        setImmediate(() => {
          if (settled) return
          const silentMs = performance.now() - Math.max(lastDataAt, sentAt)
          if (silentMs < silenceMs) {
            timer = setTimeout(judge, silenceMs - silentMs)
            return
          }
          settled = true
          reject(new RedisSilentError(silenceMs))
        })
      timer = setTimeout(judge, silenceMs)
      command.then(
        (value) => {
          settled = true
          clearTimeout(timer)
          resolve(value)
        },
        (err: unknown) => {
          settled = true
          clearTimeout(timer)
          reject(err instanceof Error ? err : new Error(String(err)))
        },
      )
    })
}
