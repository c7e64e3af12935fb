import type { FastifyBaseLogger } from 'fastify'
import type { Credentials } from '../credentials.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'

/** What a task needs to carry out one request. */
export interface TaskContext {
  upstream: OpenAIUpstream
  credentials: Credentials
  /** Aborted when the caller disconnects. */
  signal: AbortSignal
  requestId: string
  log: FastifyBaseLogger
}

export type TaskRunner<I, O> = (input: I, ctx: TaskContext) => Promise<O>
