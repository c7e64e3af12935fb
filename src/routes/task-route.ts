import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { resolveCredentials } from '../credentials.ts'
import { CallerModelNotAllowedError, ERROR_SCHEMA, invalidField, ModelNotAllowedError, withDetails } from '../errors.ts'
import type { TaskName } from '../generated/task-types.ts'
import type { JsonSchema, TaskDefinition } from '../schemas/load-tasks.ts'
import { TASKS } from '../tasks/index.ts'
import { deploymentHeader } from '../routing/deployment-header.ts'
import { cachePolicyOf } from '../cache/cached-tasks.ts'
import { cacheStatusHeader } from '../cache/cache-status.ts'
import type { TaskCache } from '../cache/task-cache.ts'
import { anyPatternMatches } from '../routing/model-patterns.ts'
import { RawJson } from '../tasks/raw-json.ts'
import { sharedRef } from '../openapi/component-ref.ts'
import { documentedTaskOperation, type OperationContext } from '../openapi/task-operations.ts'
import type { TaskContext, TaskInput, TaskModule } from '../tasks/task-context.ts'
import type { ServiceMetrics } from '../metrics/service-metrics.ts'
import type { CallTracer } from '../tracing/model-call.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'
import { COST_HEADER, type CallBill } from '../spend/call-bill.ts'
import { sendEvents } from '../streaming/send-events.ts'
import { spenderOf, type CallerSettings } from '../spend/callers.ts'
import type { Spend } from '../spend/spend.ts'

export interface TaskRouteDeps {
  config: Config
  upstream: OpenAIUpstream
  metrics: ServiceMetrics
  tracer?: CallTracer | undefined
  /** Who may call the task routes and what they answer, for the document. */
  documented: OperationContext
  /** The cache of the tasks src/cache/cached-tasks.ts names. */
  cache?: TaskCache | undefined
  spend: Spend
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's spend, for its log line. */
    bill: CallBill | undefined
  }
}

/** The runners of a task of schemas/tasks.yaml; a task without a module fails at boot. */
export function taskModule<N extends TaskName>(name: N): TaskModule<N> {
  const task: TaskModule<N> | undefined = TASKS[name]
  if (!task) throw new Error(`schemas/tasks.yaml: task ${name} has no module in src/tasks/index.ts`)
  return task
}

/**
 * `POST /v1/tasks/<task>`: the body is validated against the task's input schema, the answer
 * serialised with its output schema; an Accept header naming one of the task's stream types
 * gets the bytes (SSE, audio, image) instead of JSON.
 */
export function registerTaskRoute<N extends TaskName>(
  fastify: FastifyInstance,
  def: TaskDefinition & { name: N },
  deps: TaskRouteDeps,
): void {
  const { config } = deps
  const contextFor = taskContextFactory(deps, def, 'single')
  const { run, stream } = taskModule(def.name)
  const defaultModel = modelByDefault(def)
  const streamTypes = Object.keys(def.streams)
  if (streamTypes.length && !stream) {
    throw new Error(`schemas/tasks.yaml: ${def.name} lists streams but has no stream runner`)
  }

  const body = requestBodySchema(def)
  const documented = documentedTaskOperation(def, body, deps.documented)

  fastify.post(
    `/v1/tasks/${def.name}`,
    {
      bodyLimit: config.bodyLimits[def.bodyLimit],
      schema: {
        body,
        response: {
          200: {
            content: {
              'application/json': { schema: def.output },
              ...Object.fromEntries(streamTypes.map((mediaType) => [mediaType, { schema: { type: 'string' } }])),
            },
          },
          '4XX': sharedRef(ERROR_SCHEMA.$id),
          '5XX': sharedRef(ERROR_SCHEMA.$id),
        },
      },
      // The document's view: inputs and outputs by reference to its components, every answer described.
      config: { swaggerTransform: ({ url }) => ({ url, schema: documented }) },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      // Validated against the task's input schema, except that with per-media-type body schemas
      // Fastify validates nothing when there is no body at all.
      const input = request.body as TaskInput<N> | undefined
      if (typeof input !== 'object' || input === null) throw invalidField('', 'is required: send the task input')
      const model = input.model ?? defaultModel
      assertModelAllowed(config.allowedModels, model)
      assertCallerMayUse(request.caller, model)
      const ctx = contextFor(request, reply)
      // The caller's own key spends its own money: its budget is for the service's keys.
      if (request.caller?.budget && !ctx.credentials) await deps.spend.ledger.admit(request.caller)
      const mediaType = stream && request.headers.accept ? negotiate(request, streamTypes) : undefined
      if (!mediaType || !stream) {
        const output = await run(input, ctx)
        reply.header(COST_HEADER, ctx.usage.costText)
        if (!(output instanceof RawJson)) return output
        return reply.type('application/json; charset=utf-8').serializer(sendAsIs).send(output.text)
      }
      const accepts = (type: string): boolean => request.accepts().type(type) !== false
      const result = await stream(input, ctx, { mediaType, accepts })
      // Media is paid for before its bytes flow; an event stream says its cost in its `output` event.
      if (!result.contentType.startsWith('text/event-stream')) reply.header(COST_HEADER, ctx.usage.costText)
      if ('into' in result.body) return sendEvents(reply, { ...result, body: result.body })
      return reply
        .headers(result.headers ?? {})
        .type(result.contentType)
        .send(result.body)
    },
  )
}

/** A serializer for payloads that are JSON text already. */
export function sendAsIs(payload: unknown): string {
  return payload as string
}

/** Builds what a task needs for one request: credentials, the abort signal, where usage counts. */
export function taskContextFactory(
  { config, upstream, tracer, cache, spend }: TaskRouteDeps,
  def: TaskDefinition,
  route: 'single' | 'batch',
): (request: FastifyRequest, reply: FastifyReply) => TaskContext {
  const settings = { sseHeartbeatMs: config.sseHeartbeatMs }
  const billFor = spend.billsFor(def.name)
  const policy = cachePolicyOf(def.name, route)
  const cached = policy ? cache : undefined
  const tokensOn = config.auth.callers.length > 0
  return (request, reply) => {
    // The deployments of now: a reloaded file may have changed whose keys there are.
    const credentials = resolveCredentials(config, request.headers, upstream.hasServerKeys)
    const usage = billFor(spenderOf(request.caller, credentials))
    request.bill = usage
    // Traced: the request's span and each GenAI span name the caller; the request's span says the cost.
    const traced = tracer?.forCaller(usage.spender)
    if (tracer) usage.traceOn(tracer.annotator())
    return {
      upstream,
      credentials,
      served: deploymentHeader(reply),
      signal: abortOnClientClose(reply),
      requestId: request.id,
      log: request.log,
      settings,
      uploads: request.uploads ?? {},
      usage,
      tracer: traced,
      cache: cached?.forRequest(def.name, {
        tokenId: tokensOn ? request.clientId : undefined,
        credentials,
        cacheControl: request.headers['cache-control'],
        whenAsked: policy === 'when-asked',
        status: cacheStatusHeader(reply),
        tracer: traced,
      }),
    }
  }
}

/** JSON, and for tasks with uploads also multipart/form-data where those fields are files. */
function requestBodySchema(def: TaskDefinition): JsonSchema {
  const json = { ...def.input, 'x-examples': def.examples }
  const uploadFields = Object.keys(def.uploads)
  if (!uploadFields.length) return json
  const properties = { ...(def.input.properties as Record<string, JsonSchema>) }
  for (const field of uploadFields) {
    const fileField: JsonSchema = { ...properties[field], type: 'string', format: 'binary' }
    // A file part has no length, and the JSON field's base64 examples and wording do not fit it.
    delete fileField.minLength
    delete fileField.examples
    const { description } = def.uploads[field]!
    if (description !== undefined) fileField.description = description
    properties[field] = fileField
  }
  return {
    content: {
      'application/json': { schema: json },
      'multipart/form-data': { schema: { ...def.input, properties } },
    },
  }
}

/** The stream media type the Accept header prefers over JSON, if any. */
function negotiate(request: FastifyRequest, streamTypes: string[]): string | undefined {
  const { accept } = request.headers
  // Most callers name exactly one type: that one needs no parsing.
  if (accept === 'application/json') return undefined
  if (accept !== undefined && streamTypes.includes(accept)) return accept
  const best = request.accepts().type(['application/json', ...streamTypes])
  return typeof best === 'string' && best !== 'application/json' ? best : undefined
}

/** The model OpenAI uses when none is given, as the task's schema documents it. */
export function modelByDefault(def: TaskDefinition): string | undefined {
  const model = (def.input.properties as Record<string, JsonSchema> | undefined)?.model
  return typeof model?.default === 'string' ? model.default : undefined
}

/** A caller with a `models` list may use those models only. */
export function assertCallerMayUse(caller: CallerSettings | undefined, model: string | undefined): void {
  if (!caller?.models || model === undefined || anyPatternMatches(caller.models, model)) return
  throw withDetails(new CallerModelNotAllowedError(model, caller.name), [
    {
      field: 'model',
      path: '/model',
      message: `is not one of the models this caller may use: ${caller.models.join(', ')}`,
    },
  ])
}

export function assertModelAllowed(allowed: string[], model: string | undefined): void {
  if (!allowed.length || model === undefined) return
  if (!anyPatternMatches(allowed, model)) {
    throw withDetails(new ModelNotAllowedError(model), [
      { field: 'model', path: '/model', message: `is not one of the allowed models: ${allowed.join(', ')}` },
    ])
  }
}

/** Aborted when the caller goes away before the answer is written, so the OpenAI call stops too. */
function abortOnClientClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) controller.abort()
  })
  return controller.signal
}
