import { toErrorResponse, type AnyError } from '../error-response.ts'
import { sseEvent } from '../streaming/sse.ts'
import type { ModelCallSpan } from '../tracing/model-call.ts'
import { errorFromTransport } from '../upstream/upstream-errors.ts'
import type { TaskContext } from './task-context.ts'

/**
 * The last event of an SSE stream that failed after it started: an `error` event with the
 * service's error body, or nothing when the caller hung up (no one is left to read it).
 */
export function streamFailureEvent(ctx: TaskContext, span: ModelCallSpan | undefined, err: unknown): string {
  if (ctx.signal.aborted) {
    span?.cancelled()
    return ''
  }
  const error = isServiceError(err) ? err : errorFromTransport(err, ctx.upstream.secretsOf(ctx))
  span?.fail(error)
  ctx.log.warn({ err: error }, 'stream failed after it started')
  return sseEvent('error', toErrorResponse(error as AnyError, ctx.requestId).body)
}

function isServiceError(err: unknown): err is Error {
  return err instanceof Error && String((err as { code?: unknown }).code).startsWith('ERR_')
}
