import type { FastifyInstance } from 'fastify'
import type { ComponentDefinition, TaskDefinition } from '../schemas/load-tasks.ts'
import { answerHeaders, errorResponses, type ResponseOptions } from '../openapi/responses.ts'
import type { SecurityRequirement } from '../openapi/security.ts'
import { sendAsIs } from './task-route.ts'

/** `GET /v1/tasks`: the component and its tasks with their schemas, rendered once at start-up. */
export function registerCatalogueRoute(
  fastify: FastifyInstance,
  component: ComponentDefinition,
  definitions: TaskDefinition[],
  documented: { security: SecurityRequirement[]; answers: ResponseOptions },
): void {
  const { security, answers } = documented
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
        operationId: 'catalogue',
        tags: ['tasks'],
        summary: 'The component and its tasks, with their input and output schemas',
        description:
          'What a pipeline backend reads to list the tasks: their ids, paths, schemas and stream media types.',
        security,
        response: {
          200: {
            description: 'The task catalogue',
            headers: answerHeaders(answers),
            type: 'object',
            required: ['component', 'tasks'],
            properties: {
              component: {
                type: 'object',
                required: ['id', 'title', 'description', 'version', 'setup'],
                properties: {
                  id: { type: 'string' },
                  title: { type: 'string' },
                  description: { type: 'string' },
                  version: { type: 'string' },
                  setup: { type: 'object', description: 'JSON Schema of the component setup.' },
                },
              },
              tasks: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'task', 'title', 'description', 'path', 'input', 'output', 'streams'],
                  properties: {
                    name: { type: 'string', examples: ['text-generation'] },
                    task: { type: 'string', examples: ['TASK_TEXT_GENERATION'] },
                    title: { type: 'string' },
                    description: { type: 'string' },
                    path: { type: 'string', examples: ['/v1/tasks/text-generation'] },
                    input: { type: 'object', description: "JSON Schema of the task's input." },
                    output: { type: 'object', description: "JSON Schema of the task's output." },
                    streams: {
                      type: 'array',
                      description: 'Media types the task can also answer in, by the Accept header.',
                      items: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
          ...errorResponses({ refused: 'Refused: no valid service token', failed: 'The service failed' }, answers),
        },
      },
    },
    async (_request, reply) => reply.type('application/json; charset=utf-8').serializer(sendAsIs).send(catalogueJson),
  )
}
