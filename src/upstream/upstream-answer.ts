import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { errors, type Dispatcher } from 'undici'

/** The one reader of an answer's body: each chunk as it comes, then its end or its failure. */
export interface BodySink {
  data(chunk: Buffer): void
  end(): void
  error(err: Error): void
}

/** An answer's body, still to be read: by one sink, paused and resumed as the reader keeps up. */
export interface AnswerBody {
  /** Attaches the reader; what came before it is given to it at once. */
  consume(sink: BodySink): void
  pause(): void
  resume(): void
  /** Stops reading: the request is aborted and the sink hears nothing more. */
  destroy(): void
  /** Called once the body is settled, however that came. */
  onSettled(listener: () => void): void
}

/** An answer whose status and headers have come, its body unread. */
export interface UpstreamAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: AnswerBody
}

/** What is held, unread, before the reader pauses the body: undici's own body stream holds as much. */
const HELD_BYTES = 64 * 1024

/**
 * Sends a request and resolves with the answer once its headers have come, its body then given
 * straight from undici's handler to the reader: no stream sits in between. An aborted `signal`
 * aborts the request, at once or as soon as the pool starts it.
 */
export function dispatchAnswer(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new errors.RequestAbortedError())
      return
    }
    const handler = new AnswerHandler(resolve, reject, signal)
    try {
      dispatcher.dispatch(options, handler)
    } catch (err) {
      handler.destroy()
      reject(err instanceof Error ? err : new Error(String(err)))
    }
  })
}

class AnswerHandler implements Dispatcher.DispatchHandler, AnswerBody {
  #resolve: ((answer: UpstreamAnswer) => void) | undefined
  readonly #reject: (err: Error) => void
  readonly #signal: AbortSignal
  #controller: Dispatcher.DispatchController | undefined
  #sink: BodySink | undefined
  /** Chunks not yet given: before the reader came, or while it is paused. */
  #held: Buffer[] = []
  #heldBytes = 0
  #paused = false
  #ended = false
  #settled = false
  /** A failure that came before the reader. */
  #failure: Error | undefined
  #listener: (() => void) | undefined

  constructor(resolve: (answer: UpstreamAnswer) => void, reject: (err: Error) => void, signal: AbortSignal) {
    this.#resolve = resolve
    this.#reject = reject
    this.#signal = signal
    signal.addEventListener('abort', this.#onAbort)
  }

  readonly #onAbort = (): void => {
    this.#controller?.abort(new errors.RequestAbortedError())
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#signal.aborted) controller.abort(new errors.RequestAbortedError())
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    const resolve = this.#resolve!
    this.#resolve = undefined
    resolve({ statusCode, headers, body: this })
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    if (this.#sink && !this.#paused && !this.#held.length) {
      this.#sink.data(chunk)
      return
    }
    this.#held.push(chunk)
    this.#heldBytes += chunk.length
    // No reader yet: hold a little, then let the socket wait for it.
    if (!this.#sink && this.#heldBytes > HELD_BYTES) controller.pause()
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#ended = true
    this.#flush()
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#resolve) {
      this.#resolve = undefined
      this.#settle()
      this.#reject(err)
      return
    }
    if (this.#settled) return
    const sink = this.#sink
    this.#settle()
    // Without a reader yet, the reader hears it when it comes.
    if (sink) sink.error(err)
    else this.#failure = err
  }

  consume(sink: BodySink): void {
    if (this.#sink) throw new Error('an answer body has one reader')
    this.#sink = sink
    if (this.#failure) {
      sink.error(this.#failure)
      return
    }
    this.#flush()
    if (!this.#paused && !this.#settled) this.#controller?.resume()
  }

  pause(): void {
    if (this.#paused || this.#settled) return
    this.#paused = true
    this.#controller?.pause()
  }

  resume(): void {
    if (!this.#paused || this.#settled) return
    this.#paused = false
    this.#flush()
    if (!this.#paused && !this.#settled) this.#controller?.resume()
  }

  destroy(): void {
    if (this.#settled) return
    this.#settle()
    this.#controller?.abort(new errors.RequestAbortedError())
  }

  onSettled(listener: () => void): void {
    if (this.#settled) listener()
    else this.#listener = listener
  }

  /** Gives the held chunks while the reader takes them, then the end once all are given. */
  #flush(): void {
    const sink = this.#sink
    if (!sink) return
    while (this.#held.length && !this.#paused && !this.#settled) {
      const chunk = this.#held.shift()!
      this.#heldBytes -= chunk.length
      sink.data(chunk)
    }
    if (this.#ended && !this.#held.length && !this.#paused && !this.#settled) {
      this.#settle()
      sink.end()
    }
  }

  #settle(): void {
    this.#settled = true
    this.#held = []
    this.#signal.removeEventListener('abort', this.#onAbort)
    const listener = this.#listener
    this.#listener = undefined
    listener?.()
  }
}

/**
 * The whole body, or `tooLarge()` once it passes `maxBytes` (the body is destroyed, so nothing
 * more is read). Its failures are thrown as they come.
 */
export function readWhole(body: AnswerBody, maxBytes: number, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    body.consume({
      data(chunk) {
        size += chunk.length
        if (size <= maxBytes) chunks.push(chunk)
        else {
          body.destroy()
          reject(tooLarge())
        }
      },
      end: () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)),
      error: reject,
    })
  })
}

/** The body's first `limit` bytes as text (all of it when shorter); what cannot be read ends it. */
export function readPrefix(body: AnswerBody, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => resolve(Buffer.concat(chunks, size).subarray(0, limit).toString('utf8'))
    body.consume({
      data(chunk) {
        chunks.push(chunk)
        size += chunk.length
        if (size >= limit) {
          body.destroy()
          done()
        }
      },
      end: done,
      error: done,
    })
  })
}

/** The body as a Node stream, for answers piped on as they come (audio); destroying it destroys the body. */
export function bodyStream(body: AnswerBody): Readable {
  const stream = new Readable({
    read: () => body.resume(),
    destroy(err, callback) {
      body.destroy()
      callback(err)
    },
  })
  body.consume({
    data(chunk) {
      if (!stream.push(chunk)) body.pause()
    },
    end: () => stream.push(null),
    error: (err) => stream.destroy(err),
  })
  return stream
}
