import type { JsonSchema } from '../schemas/load-tasks.ts'

/** Marks a response header, in a route schema, as one every such answer carries. */
export const ALWAYS_SENT = 'x-always-sent'

type Header = { schema?: JsonSchema; required?: boolean }

/**
 * Turns the headers marked ALWAYS_SENT into `required: true` headers: @fastify/swagger copies
 * everything of a route's header but its description into the header's schema.
 */
export function requiredHeaders<D extends object>(document: D): D {
  const { paths } = document as { paths?: Record<string, Record<string, JsonSchema>> }
  for (const pathItem of Object.values(paths ?? {})) {
    for (const operation of Object.values(pathItem)) {
      for (const response of Object.values((operation.responses ?? {}) as Record<string, JsonSchema>)) {
        for (const header of Object.values((response.headers ?? {}) as Record<string, Header>)) {
          if (!header.schema?.[ALWAYS_SENT]) continue
          delete header.schema[ALWAYS_SENT]
          header.required = true
        }
      }
    }
  }
  return document
}
