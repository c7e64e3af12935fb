import type { Readable } from 'node:stream'
import createError from '@fastify/error'

/** A task answer sent as bytes rather than JSON. */
export interface StreamResult {
  contentType: string
  body: Readable
  headers?: Record<string, string>
}

/** What the caller's Accept header asked for, for a task that can answer as a stream. */
export interface StreamNegotiation {
  /** The best media type among the task's stream types. */
  mediaType: string
  /** Whether the Accept header allows this media type. */
  accepts: (mediaType: string) => boolean
}

export const NotAcceptableError = createError('ERR_NOT_ACCEPTABLE', 'Cannot answer in the requested media type: %s', 406)
