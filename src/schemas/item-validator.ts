import { Ajv, type ValidateFunction } from 'ajv'
import { BODY_VALIDATION_OPTIONS } from './ajv-options.ts'
import type { JsonSchema } from './load-tasks.ts'

/** Validators for inputs inside another body (batch items): an item passes or fails as it would alone. */
const ajv = new Ajv(BODY_VALIDATION_OPTIONS)

/** Checks one item against a task's input schema, typed as that task's input. */
export function compileItemValidator<T>(schema: JsonSchema): ValidateFunction<T> {
  return ajv.compile<T>(schema)
}
