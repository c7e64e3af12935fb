import type { FastifyInstance } from 'fastify'
import type { ComponentDefinition, TaskDefinition } from '../schemas/load-tasks.ts'
import { sendAsIs } from './task-route.ts'

/** `GET /v1/tasks`: the component and its tasks with their schemas, rendered once at start-up. */
export function registerCatalogueRoute(
  fastify: FastifyInstance,
  component: ComponentDefinition,
  definitions: TaskDefinition[],
): void {
  const catalogueJson = JSON.stringify({
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
      streams: Object.keys(def.streams),
    })),
  })
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
    async (_request, reply) => reply.type('application/json; charset=utf-8').serializer(sendAsIs).send(catalogueJson),
  )
}
