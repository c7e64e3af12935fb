import type { Options } from 'ajv'

/**
 * How request bodies are validated, by Fastify and for batch items alike: unknown fields refused
 * (not stripped), no type coercion, and no schema defaults filled in: a `default` documents what
 * OpenAI does when the field is left out, so only what the caller gave goes upstream. Validation
 * stops at the first problem; body-validator.ts looks for the others only where that is cheap.
 */
export const BODY_VALIDATION_OPTIONS: Options = {
  allErrors: false,
  removeAdditional: false,
  coerceTypes: false,
  useDefaults: false,
  // A failed `not: {required: [..]}` says which fields exclude each other only with its schema.
  verbose: true,
  // OpenAPI-only annotation on the route body schemas.
  keywords: ['x-examples'],
  // A multipart file field: its bytes are never in the validated body.
  formats: { binary: true },
}
