import { Ajv, type ValidateFunction } from 'ajv'
import type { JsonSchema } from './load-tasks.ts'

/**
 * Validators for inputs that arrive inside another body (batch items), with the same options
 * Fastify uses for request bodies, so an item passes or fails exactly as it would alone.
 */
const ajv = new Ajv({
  allErrors: true,
  removeAdditional: false,
  coerceTypes: false,
  useDefaults: true,
  keywords: ['x-examples'],
  formats: { binary: true },
})

export function compileItemValidator(schema: JsonSchema): ValidateFunction {
  return ajv.compile(schema)
}
