import type { Readable } from 'node:stream'
import type { SseStream } from './sse.ts'

// Task modules take the 406 from here, with the stream types it goes with.
export { NotAcceptableError } from '../errors.ts'

/** A task answer sent as bytes rather than JSON. */
export interface StreamResult {
  contentType: string
  /** Bytes for Fastify to send (media), or events the relay writes into the response itself. */
  body: Readable | SseStream
  headers?: Record<string, string>
}

/** What the caller's Accept header asked for, for a task that can answer as a stream. */
export interface StreamNegotiation {
  /** The best media type among the task's stream types. */
  mediaType: string
  /** Whether the Accept header allows this media type. */
  accepts: (mediaType: string) => boolean
}
