import { ERROR_SCHEMA } from '../errors.ts'
import type { JsonSchema, TaskDefinition } from '../schemas/load-tasks.ts'
import { componentRef } from './component-ref.ts'

const SSE = 'text/event-stream'

/** One Server-Sent Event: its name and the JSON its data line holds. */
function eventOf(name: string, data: JsonSchema, description: string): JsonSchema {
  return {
    type: 'object',
    title: name,
    description,
    required: ['event', 'data'],
    properties: { event: { type: 'string', const: name }, data },
  }
}

/**
 * The events of a task's `text/event-stream` answer as one schema, a `oneOf` by event name: the
 * task's own (schemas/tasks.yaml), then `output`, `done` and, for a failure, `error`.
 */
export function streamEventsSchema(
  def: TaskDefinition,
  names: { output: string; events: string },
): JsonSchema | undefined {
  const stream = def.streams[SSE]
  if (!stream) return undefined
  const own = Object.entries(stream.events ?? {}).map(([name, data]) =>
    eventOf(name, data, String(data.description ?? name)),
  )
  return {
    title: names.events,
    description: `One event of the ${def.title.toLowerCase()} stream: its \`event\` field and its \`data\` as JSON.`,
    oneOf: [
      ...own,
      eventOf('output', componentRef(names.output), 'The complete output, as the JSON answer has it.'),
      eventOf('done', { type: 'object', maxProperties: 0 }, 'The stream is complete.'),
      eventOf('error', componentRef(ERROR_SCHEMA.$id), 'The stream failed after it started; it ends here.'),
    ],
  }
}

/** A stream answer's media type object: binary bytes, or Server-Sent Events with their schema. */
export function streamContent(mediaType: string, description: string, eventsId: string): JsonSchema {
  if (mediaType !== SSE) return { schema: { type: 'string', format: 'binary', contentMediaType: mediaType, description } }
  return {
    schema: {
      type: 'string',
      contentMediaType: SSE,
      // The stream read as its events, in order (JSON Schema's schema of decoded content).
      contentSchema: { type: 'array', items: componentRef(eventsId) },
      description,
    },
  }
}
