import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import pMap from 'p-map'
import { toErrorResponse, type AnyError } from '../error-response.ts'
import type { TaskName } from '../generated/task-types.ts'
import { ERROR_SCHEMA } from '../errors.ts'
import { sharedRef } from '../openapi/component-ref.ts'
import { documentedBatchOperation } from '../openapi/task-operations.ts'
import type { JsonSchema, TaskDefinition } from '../schemas/load-tasks.ts'
import { compileBodyCheck } from '../schemas/body-validator.ts'
import type { BatchRunner, TaskInput, TaskOutput, TaskRunner } from '../tasks/task-context.ts'
import { COST_HEADER } from '../spend/call-bill.ts'
import { outputsJson, RawJson } from '../tasks/raw-json.ts'
import {
  assertCallerMayUse,
  assertModelAllowed,
  modelByDefault,
  sendAsIs,
  taskContextFactory,
  taskModule,
  type TaskRouteDeps,
} from './task-route.ts'

/**
 * `POST /v1/tasks/<task>/batch`: `{"inputs":[..]}` → `{"outputs":[..]}` in the same order. Each
 * item is validated and run on its own; one item's failure is its own `{"error":..}` entry.
 * Tasks with a batch runner (embeddings) combine items into fewer OpenAI requests; the others
 * run their items with bounded concurrency.
 */
export function registerBatchRoute<N extends TaskName>(
  fastify: FastifyInstance,
  def: TaskDefinition & { name: N },
  deps: TaskRouteDeps,
): void {
  const { config } = deps
  const check = compileBodyCheck(def.input, 'item')
  const defaultModel = modelByDefault(def)
  const contextFor = taskContextFactory(deps, def, 'batch')
  const task = taskModule(def.name)
  const batch = task.batch ?? runEachItem(task.run)

  // Items are checked one by one in the handler, so that one bad item is that item's error.
  const body = (items: JsonSchema): JsonSchema => ({
    type: 'object',
    additionalProperties: false,
    required: ['inputs'],
    properties: {
      inputs: {
        type: 'array',
        minItems: 1,
        maxItems: config.batch.maxItems,
        description: `Inputs of ${def.title.toLowerCase()}, each as the single route takes it.`,
        items,
      },
    },
  })
  const documented = documentedBatchOperation(def, body, deps.documented)

  fastify.post(
    `/v1/tasks/${def.name}/batch`,
    {
      bodyLimit: config.bodyLimits[def.bodyLimit],
      schema: {
        body: body({ type: 'object' }),
        response: { '4XX': sharedRef(ERROR_SCHEMA.$id), '5XX': sharedRef(ERROR_SCHEMA.$id) },
      },
      config: { swaggerTransform: ({ url }) => ({ url, schema: documented }) },
    },
    async (request: FastifyRequest, reply: FastifyReply) => {
      const { inputs } = request.body as { inputs: unknown[] }
      const ctx = contextFor(request, reply)
      if (request.caller?.budget && !ctx.credentials) await deps.spend.ledger.admit(request.caller)
      const outputs: unknown[] = new Array(inputs.length)
      const runnable: number[] = []
      const valid: Array<TaskInput<N>> = []
      inputs.forEach((item, i) => {
        try {
          const problems = check(item)
          if (problems) throw problems
          const input = item as TaskInput<N>
          assertModelAllowed(config.allowedModels, input.model ?? defaultModel)
          assertCallerMayUse(request.caller, input.model ?? defaultModel)
          runnable.push(i)
          valid.push(input)
        } catch (err) {
          outputs[i] = itemError(err, request.id)
        }
      })
      // Traced: a span per item, under which its OpenAI calls go (or to which a shared call links).
      const items = ctx.tracer?.batch(runnable)
      const results = await batch(valid, items ? { ...ctx, batch: items } : ctx, config.batch.concurrency)
      items?.settle(results)
      results.forEach((result, k) => {
        outputs[runnable[k]!] = result instanceof Error ? itemError(result, request.id) : result
      })
      // Written by hand: items may be JSON copied from OpenAI's answer (RawJson), and a schema
      // serializer would check each item against "output or error" for nothing.
      const json = outputs.map((output) => (output instanceof RawJson ? output.text : JSON.stringify(output)))
      return reply
        .header(COST_HEADER, ctx.usage.costText)
        .type('application/json; charset=utf-8')
        .serializer(sendAsIs)
        .send(outputsJson(json))
    },
  )
}

function runEachItem<N extends TaskName>(
  run: TaskRunner<TaskInput<N>, TaskOutput<N>>,
): BatchRunner<TaskInput<N>, TaskOutput<N>> {
  return (inputs, ctx, concurrency) =>
    pMap(
      inputs,
      (input, k) => {
        const item = () => run(input, ctx).catch((err: Error) => err)
        return ctx.batch ? ctx.batch.item(k, item) : item()
      },
      { concurrency },
    )
}

function itemError(err: unknown, requestId: string): unknown {
  const { status, body } = toErrorResponse(err as AnyError, requestId)
  return { error: { ...body.error, status } }
}
