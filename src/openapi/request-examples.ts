import type { JsonSchema } from '../schemas/load-tasks.ts'

type Document = { components?: { schemas?: Record<string, JsonSchema> }; paths?: Record<string, JsonSchema> }

const COMPONENT = '#/components/schemas/'

/** Where an input component carries its examples until they move (@fastify/swagger rewrites `x-examples`). */
export const REQUEST_EXAMPLES = 'x-request-examples'

/**
 * Moves each input component's examples to the request bodies that reference it: @fastify/swagger
 * drops a `$ref`'s siblings, and named examples belong to the media type (Swagger UI's drop-down).
 */
export function examplesOnRequestBodies<D extends object>(document: D): D {
  const { components, paths } = document as Document
  const schemas = components?.schemas ?? {}
  const moved = new Set<string>()
  for (const pathItem of Object.values(paths ?? {})) {
    for (const operation of Object.values(pathItem) as JsonSchema[]) {
      const content = (operation.requestBody as { content?: Record<string, JsonSchema> } | undefined)?.content ?? {}
      for (const media of Object.values(content)) {
        const target = (media.schema as { $ref?: string } | undefined)?.$ref
        if (!target?.startsWith(COMPONENT)) continue
        const name = target.slice(COMPONENT.length)
        const examples = schemas[name]?.[REQUEST_EXAMPLES]
        if (examples === undefined) continue
        media.examples = examples
        moved.add(name)
      }
    }
  }
  for (const name of moved) delete schemas[name]![REQUEST_EXAMPLES]
  return document
}
