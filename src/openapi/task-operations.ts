import { cachePolicyOf, type CachePolicy } from '../cache/cached-tasks.ts'
import type { JsonSchema, TaskDefinition } from '../schemas/load-tasks.ts'
import { componentRef } from './component-ref.ts'
import { BATCH_ITEM_ERROR, schemaNames } from './components.ts'
import { answerHeaders, errorResponses, type ResponseOptions } from './responses.ts'
import type { SecurityRequirement } from './security.ts'
import { streamContent } from './stream-events.ts'

/** What the document says of every task operation beyond the task itself. */
export interface OperationContext {
  security: SecurityRequirement[]
  answers: ResponseOptions
}

const TASK_ERRORS = {
  refused: 'The request was refused; see the error code',
  failed: 'OpenAI failed, or could not be reached in time',
}

/** The request header a cached task's routes take (docs/cache.md). */
function cacheControlHeader(policy: CachePolicy): JsonSchema {
  const optIn =
    policy === 'when-asked'
      ? 'This route caches only when asked: without `max-age` its answers are neither read from the cache nor stored. '
      : ''
  return {
    type: 'object',
    properties: {
      'Cache-Control': {
        type: 'string',
        description:
          optIn +
          '`no-cache`: ask OpenAI afresh (and store the answer); `no-store`: neither read nor store; ' +
          '`max-age=<seconds>`: take only cached answers at most that old, and keep what is stored no longer. ' +
          'Other directives are ignored.',
        examples: ['max-age=3600'],
      },
    },
  }
}

/** The caching parts of a task's operations: its request header, and the answers' header. */
function caching(
  def: TaskDefinition,
  context: OperationContext,
  route: 'single' | 'batch',
): { answers: ResponseOptions; headers?: JsonSchema } {
  const policy = cachePolicyOf(def.name, route)
  if (!policy) return { answers: context.answers }
  return { answers: { ...context.answers, cached: true }, headers: cacheControlHeader(policy) }
}

/**
 * `POST /v1/tasks/<task>` as the document shows it: input and output by reference to their
 * components, each stream answer with its media type (and events), every header.
 * `body` is the route's own body schema, whose JSON part the reference replaces.
 */
export function documentedTaskOperation(def: TaskDefinition, body: JsonSchema, context: OperationContext): JsonSchema {
  const names = schemaNames(def)
  const json = componentRef(names.input)
  const streamHeaders = Object.assign({}, ...Object.values(def.streams).map((stream) => stream.headers ?? {}))
  const { answers, headers } = caching(def, context, 'single')
  return {
    operationId: def.name,
    tags: ['tasks'],
    summary: def.title,
    description: def.description,
    security: context.security,
    ...(headers && { headers }),
    body: 'content' in body ? { content: { ...(body.content as object), 'application/json': { schema: json } } } : json,
    response: {
      200: {
        description: `${def.title} output`,
        headers: { ...answerHeaders(answers), ...streamHeaders },
        content: {
          'application/json': { schema: componentRef(names.output) },
          ...Object.fromEntries(
            Object.entries(def.streams).map(([mediaType, { description }]) => [
              mediaType,
              streamContent(mediaType, description, names.events),
            ]),
          ),
        },
      },
      ...errorResponses(TASK_ERRORS, answers),
    },
  }
}

/** `POST /v1/tasks/<task>/batch` as the document shows it: each input and output by reference. */
export function documentedBatchOperation(
  def: TaskDefinition,
  body: (items: JsonSchema) => JsonSchema,
  context: OperationContext,
): JsonSchema {
  const names = schemaNames(def)
  const { answers, headers } = caching(def, context, 'batch')
  return {
    operationId: `${def.name}-batch`,
    tags: ['batch'],
    summary: `${def.title}, for many inputs`,
    description: `Runs ${def.title.toLowerCase()} for each input, in order. An item that fails has an \`error\` entry in its place; the others are not affected.`,
    security: context.security,
    ...(headers && { headers }),
    body: body(componentRef(names.input)),
    response: {
      200: {
        description: 'One entry per input, in the same order',
        headers: answerHeaders(answers),
        type: 'object',
        required: ['outputs'],
        properties: {
          outputs: {
            type: 'array',
            items: { anyOf: [componentRef(names.output), componentRef(BATCH_ITEM_ERROR)] },
          },
        },
      },
      ...errorResponses({ refused: 'The batch as a whole was refused', failed: 'The service failed' }, answers),
    },
  }
}
