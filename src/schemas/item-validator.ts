import { Ajv, type ValidateFunction } from 'ajv'
import { BODY_VALIDATION_OPTIONS } from './ajv-options.ts'
import type { JsonSchema } from './load-tasks.ts'

/** Validators for inputs inside another body (batch items): an item passes or fails as it would alone. */
const ajv = new Ajv(BODY_VALIDATION_OPTIONS)

export function compileItemValidator(schema: JsonSchema): ValidateFunction {
  return ajv.compile(schema)
}
