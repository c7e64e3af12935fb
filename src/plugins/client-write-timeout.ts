import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface ClientWriteTimeoutOptions {
  /** How long a connection may hold bytes its client does not take; 0: forever. */
  timeoutMs: number
  /** Called for each connection cut off. */
  onTimeout?: (pendingBytes: number) => void
}

interface WriteProgress {
  /** Bytes the kernel had taken at the last sweep that saw them move. */
  flushed: number
  since: number
}

/**
 * Cuts off clients that stop reading. A connection with bytes waiting to be written that the
 * client has not taken for `timeoutMs` is destroyed: its response ends and the OpenAI call
 * behind it is aborted, so a stalled reader holds nothing another caller needs. One sweep over
 * the open connections every eighth of the timeout (at most every second); no timer per write.
 */
async function clientWriteTimeout(
  fastify: FastifyInstance,
  { timeoutMs, onTimeout }: ClientWriteTimeoutOptions,
): Promise<void> {
  if (!timeoutMs) return
  const connections = new Map<Socket, WriteProgress>()
  fastify.server.on('connection', (socket: Socket) => {
    connections.set(socket, { flushed: -1, since: 0 })
    socket.once('close', () => connections.delete(socket))
  })

  const sweep = (): void => {
    const now = performance.now()
    for (const [socket, progress] of connections) {
      const pending = socket.writableLength
      if (pending === 0) {
        progress.flushed = -1
        continue
      }
      // bytesWritten counts the bytes still queued too; what the kernel took is the difference.
      const flushed = socket.bytesWritten - pending
      if (flushed !== progress.flushed) {
        progress.flushed = flushed
        progress.since = now
      } else if (now - progress.since >= timeoutMs) {
        connections.delete(socket)
        socket.destroy()
        onTimeout?.(pending)
      }
    }
  }

  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', (done) => {
    timer = setInterval(sweep, Math.min(1000, Math.max(10, Math.floor(timeoutMs / 8)))).unref()
    done()
  })
  fastify.addHook('onClose', (_instance, done) => {
    clearInterval(timer)
    done()
  })
}

export default fp(clientWriteTimeout, { name: 'client-write-timeout' })
