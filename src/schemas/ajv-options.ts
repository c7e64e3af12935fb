import type { Options } from 'ajv'

/**
 * How request bodies are validated, by Fastify and for batch items alike: every error reported,
 * unknown fields refused (not stripped), no type coercion, schema defaults filled in.
 */
export const BODY_VALIDATION_OPTIONS: Options = {
  allErrors: true,
  removeAdditional: false,
  coerceTypes: false,
  useDefaults: true,
  // OpenAPI-only annotation on the route body schemas.
  keywords: ['x-examples'],
  // A multipart file field: its bytes are never in the validated body.
  formats: { binary: true },
}
