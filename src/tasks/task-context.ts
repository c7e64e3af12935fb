import type { FastifyBaseLogger } from 'fastify'
import type { Credentials } from '../credentials.ts'
import type { UsageRecorder } from '../metrics/service-metrics.ts'
import type { UploadedFile } from '../plugins/uploads.ts'
import type { StreamNegotiation, StreamResult } from '../streaming/stream-result.ts'
import type { BatchTrace, CallTracer } from '../tracing/model-call.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'

/** What a task needs to carry out one request. */
export interface TaskContext {
  upstream: OpenAIUpstream
  credentials: Credentials
  /** Aborted when the caller disconnects. */
  signal: AbortSignal
  requestId: string
  log: FastifyBaseLogger
  settings: { sseHeartbeatMs: number }
  /** Input fields that arrived as multipart file parts, spooled to disk. */
  uploads: Record<string, UploadedFile>
  /** Where the task reports tokens, characters, audio and images for the metrics. */
  usage: UsageRecorder
  /** GenAI spans for the OpenAI calls; undefined when tracing is off. */
  tracer?: CallTracer | undefined
  /** In a traced batch: the items' spans. */
  batch?: BatchTrace | undefined
}

export type TaskRunner<I, O> = (input: I, ctx: TaskContext) => Promise<O>

/** Answers with bytes (audio, image, SSE) instead of JSON, when the Accept header asks for them. */
export type StreamRunner<I> = (input: I, ctx: TaskContext, negotiation: StreamNegotiation) => Promise<StreamResult>

/** Runs many inputs at once; each result is the item's output or the error that item met. */
export type BatchRunner<I, O> = (inputs: I[], ctx: TaskContext, concurrency: number) => Promise<Array<O | Error>>
