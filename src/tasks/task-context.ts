import type { FastifyBaseLogger } from 'fastify'
import type { RequestCache } from '../cache/task-cache.ts'
import type { TaskName, TaskTypes } from '../generated/task-types.ts'
import type { Credentials } from '../credentials.ts'
import type { CallBill } from '../spend/call-bill.ts'
import type { UploadedFile } from '../plugins/uploads.ts'
import type { StreamNegotiation, StreamResult } from '../streaming/stream-result.ts'
import type { BatchTrace, CallTracer } from '../tracing/model-call.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'
import type { RawJson } from './raw-json.ts'

/** What a task needs to carry out one request. */
export interface TaskContext {
  upstream: OpenAIUpstream
  /** The caller's own key when it spends its own; undefined: the deployments' keys. */
  credentials: Credentials | undefined
  /** Told which deployment answered a call: the answer's `x-openai-tasks-deployment`. */
  served?: ((deployment: string) => void) | undefined
  /** Aborted when the caller disconnects. */
  signal: AbortSignal
  requestId: string
  log: FastifyBaseLogger
  settings: { sseHeartbeatMs: number }
  /** Input fields that arrived as multipart file parts, spooled to disk. */
  uploads: Record<string, UploadedFile>
  /** Where the task reports tokens, characters, audio and images: the metrics and the request's bill. */
  usage: CallBill
  /** GenAI spans for the OpenAI calls; undefined when tracing is off. */
  tracer?: CallTracer | undefined
  /** In a traced batch: the items' spans. */
  batch?: BatchTrace | undefined
  /** The task's cache for this caller, when the task is cached (src/cache/). */
  cache?: RequestCache | undefined
}

export type TaskRunner<I, O> = (input: I, ctx: TaskContext) => Promise<O>

/** Answers with bytes (audio, image, SSE) instead of JSON, when the Accept header asks for them. */
export type StreamRunner<I> = (input: I, ctx: TaskContext, negotiation: StreamNegotiation) => Promise<StreamResult>

/** Runs many inputs at once; each result is the item's output or the error that item met. */
export type BatchRunner<I, O> = (inputs: I[], ctx: TaskContext, concurrency: number) => Promise<Array<O | Error>>

export type TaskInput<N extends TaskName> = TaskTypes[N]['input']
/** A task's output, or OpenAI's JSON copied as it came when it already has the output's shape. */
export type TaskOutput<N extends TaskName> = TaskTypes[N]['output'] | RawJson

/** One task's runners: the JSON answer, and optionally a stream and a batch form. */
export interface TaskModule<N extends TaskName> {
  run: TaskRunner<TaskInput<N>, TaskOutput<N>>
  /** Answers with the media types schemas/tasks.yaml lists under `streams`. */
  stream?: StreamRunner<TaskInput<N>>
  /** Better than running each item on its own, e.g. fewer OpenAI requests. */
  batch?: BatchRunner<TaskInput<N>, TaskOutput<N>>
}
