import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.ts'
import { resolveCredentials } from '../credentials.ts'
import { ModelNotAllowedError, OverloadedError, withDetails } from '../errors.ts'
import rateLimitPlugin from '../plugins/rate-limit.ts'
import serviceAuth from '../plugins/service-auth.ts'
import type { ComponentDefinition, TaskDefinition } from '../schemas/load-tasks.ts'
import { TASK_RUNNERS } from '../tasks/index.ts'
import type { TaskContext } from '../tasks/task-context.ts'
import type { OpenAIUpstream } from '../upstream/openai-upstream.ts'

export interface TaskRoutesOptions {
  config: Config
  definitions: TaskDefinition[]
  component: ComponentDefinition
  upstream: OpenAIUpstream
}

const ERROR_REF = { $ref: 'error-response#' }

/** One POST route per task of schemas/tasks.yaml, plus the catalogue at GET /v1/tasks. */
export default async function taskRoutes(fastify: FastifyInstance, options: TaskRoutesOptions): Promise<void> {
  const { config, definitions, component, upstream } = options
  await fastify.register(serviceAuth, { tokens: config.auth.serviceTokens })
  await fastify.register(rateLimitPlugin, { rateLimit: config.rateLimit })
  if (config.maxEventLoopDelayMs) {
    await fastify.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      retryAfter: 1,
      customError: OverloadedError,
    })
  }

  for (const def of definitions) {
    const run = TASK_RUNNERS[def.name]
    fastify.post(
      `/v1/tasks/${def.name}`,
      {
        bodyLimit: config.bodyLimits[def.bodyLimit],
        schema: {
          operationId: def.name,
          tags: ['tasks'],
          summary: def.title,
          description: def.description,
          security: [{}, { bearerAuth: [] }, { openaiApiKey: [] }, { bearerAuth: [], openaiApiKey: [] }],
          body: { ...def.input, 'x-examples': def.examples },
          response: {
            200: { description: `${def.title} output`, ...def.output },
            '4XX': { description: 'The request was refused; see the error code', ...ERROR_REF },
            '5XX': { description: 'OpenAI failed, or could not be reached in time', ...ERROR_REF },
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const input = request.body as { model?: string }
        assertModelAllowed(config.allowedModels, input.model)
        const ctx: TaskContext = {
          upstream,
          credentials: resolveCredentials(config, request.headers),
          signal: abortOnClientClose(reply),
          requestId: request.id,
          log: request.log,
        }
        return run(input as never, ctx)
      },
    )
  }

  const catalogue = {
    component: {
      id: component.id,
      title: component.title,
      description: component.description,
      version: component.version,
      setup: component.setup,
    },
    tasks: definitions.map((def) => ({
      name: def.name,
      task: def.taskId,
      title: def.title,
      description: def.description,
      path: `/v1/tasks/${def.name}`,
      input: def.input,
      output: def.output,
    })),
  }
  const catalogueJson = JSON.stringify(catalogue)
  fastify.get(
    '/v1/tasks',
    {
      schema: {
        tags: ['tasks'],
        summary: 'The component and its tasks, with their input and output schemas',
        response: {
          200: {
            description: 'The task catalogue',
            type: 'object',
            properties: {
              component: { type: 'object', additionalProperties: true },
              tasks: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
        },
      },
    },
    async (_request, reply) => reply.type('application/json').serializer((payload) => payload as string).send(catalogueJson),
  )
}

function assertModelAllowed(allowed: string[], model: string | undefined): void {
  if (!allowed.length || model === undefined) return
  const ok = allowed.some((entry) => (entry.endsWith('*') ? model.startsWith(entry.slice(0, -1)) : entry === model))
  if (!ok) {
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
