import { ERROR_SCHEMA } from '../errors.ts'
import type { JsonSchema, TaskDefinition } from '../schemas/load-tasks.ts'
import { REQUEST_EXAMPLES } from './request-examples.ts'
import { streamEventsSchema } from './stream-events.ts'

/** The names of a task's schemas among the document's components: the types a generated client gets. */
export function schemaNames(def: Pick<TaskDefinition, 'name'>): { input: string; output: string; events: string } {
  const pascal = def.name.replace(/(?:^|-)([a-z])/g, (_, letter: string) => letter.toUpperCase())
  return { input: `${pascal}Input`, output: `${pascal}Output`, events: `${pascal}Event` }
}

export const BATCH_ITEM_ERROR = 'BatchItemError'

/** The error entry of a batch item: the error body's `error`, with the status it would have had alone. */
const BATCH_ITEM_ERROR_SCHEMA: JsonSchema = {
  ...ERROR_SCHEMA,
  $id: undefined,
  title: BATCH_ITEM_ERROR,
  description: 'The error this item met; the other items are unaffected.',
  properties: {
    error: {
      ...ERROR_SCHEMA.properties.error,
      required: [...ERROR_SCHEMA.properties.error.required, 'status'],
    },
  },
}

/**
 * Each task's input, output and stream events as the document's components, so the single and
 * the batch route reference one definition and a generated client names one type for each. Only
 * the document holds them: in Fastify's shared schemas every serializer would compile them anew.
 */
export function documentComponents(definitions: TaskDefinition[]): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {}
  for (const def of definitions) {
    const names = schemaNames(def)
    // Its examples go to the request bodies that reference it (request-examples.ts).
    schemas[names.input] = { ...def.input, [REQUEST_EXAMPLES]: def.examples }
    schemas[names.output] = def.output
    const events = streamEventsSchema(def, names)
    if (events) schemas[names.events] = events
  }
  schemas[BATCH_ITEM_ERROR] = BATCH_ITEM_ERROR_SCHEMA
  return schemas
}
