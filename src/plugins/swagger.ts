import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { examplesOnRequestBodies } from '../openapi/request-examples.ts'
import { requiredHeaders } from '../openapi/required-headers.ts'
import type { DocumentedSecurity } from '../openapi/security.ts'
import type { ComponentDefinition, JsonSchema } from '../schemas/load-tasks.ts'

export interface SwaggerOptions {
  component: ComponentDefinition
  /** The document's own component schemas (src/openapi/components.ts). */
  schemas: Record<string, JsonSchema>
  /** The security schemes the operations name (src/openapi/security.ts). */
  schemes: DocumentedSecurity['schemes']
  /** PUBLIC_URL: the one server of the document; unset, the origin the document was asked at. */
  publicUrl: string | undefined
  port: number
}

/** OpenAPI 3.1 document built from the route schemas, at /openapi.json, and Swagger UI at /docs. */
async function swaggerPlugin(
  fastify: FastifyInstance,
  { component, schemas, schemes, publicUrl, port }: SwaggerOptions,
): Promise<void> {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'openai-tasks',
        version: component.version,
        description:
          `${component.description}\n\n` +
          'Each task is `POST /v1/tasks/<task>` with the task input as the JSON body. Every non-2xx ' +
          'answer has the body `{"error":{"code","message","details","request-id"}}`. Each operation ' +
          'says how to authenticate, as this server is configured: a service token, your own OpenAI ' +
          'key, or nothing.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      // The document as a fresh clone serves it; /openapi.json names the server it is asked at.
      servers: [{ url: publicUrl ?? `http://localhost:${port}` }],
      tags: [
        { name: 'tasks', description: 'The OpenAI component tasks' },
        { name: 'batch', description: 'Each task for many inputs at once, as pipelines run it' },
        { name: 'usage', description: "What each caller spent, at the service's prices" },
        { name: 'operations', description: 'Health and metrics' },
      ],
      components: { schemas, securitySchemes: schemes },
    },
    transformObject: (document) =>
      'openapiObject' in document ? requiredHeaders(examplesOnRequestBodies(document.openapiObject)) : {},
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
  })
  // Served with the server it is asked at, here and to Swagger UI: try-it-out calls go there.
  const served = (document: object, request: FastifyRequest) =>
    publicUrl ? document : { ...document, servers: [{ url: `${request.protocol}://${request.host}` }] }
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    transformSpecification: served,
    transformSpecificationClone: false,
  })
  fastify.get('/openapi.json', { schema: { hide: true } }, async (request) => served(fastify.swagger(), request))
}

export default fp(swaggerPlugin, { name: 'swagger' })
