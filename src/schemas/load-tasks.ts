import { readFile } from 'node:fs/promises'
import { $RefParser } from '@apidevtools/json-schema-ref-parser'
import { parse } from 'yaml'
import type { TaskName } from '../generated/task-types.ts'

export type { TaskName }

export type JsonSchema = Record<string, unknown>

export interface TaskDefinition {
  name: TaskName
  taskId: string
  title: string
  description: string
  bodyLimit: 'json' | 'media'
  input: JsonSchema
  output: JsonSchema
  examples: Record<string, { summary: string; value: Record<string, unknown> }>
  /** Media types the task can also answer in, by the Accept header, with what they hold. */
  streams: Record<string, StreamDefinition>
  /** Input fields that may arrive as multipart file parts: size limit, and how the file part is described. */
  uploads: Record<string, { maxBytes: number; description?: string }>
}

export interface StreamDefinition {
  description: string
  /** Server-Sent Events only: the task's own events by name, with the schema of their data. */
  events?: Record<string, JsonSchema>
  /** Headers this kind of answer carries beyond those of every answer, with their schemas. */
  headers?: Record<string, JsonSchema>
}

export interface ComponentDefinition {
  id: string
  title: string
  description: string
  version: string
  setup: JsonSchema
  [key: string]: unknown
}

const SCHEMA_DIR = new URL('../../schemas/', import.meta.url)

/**
 * Reads schemas/tasks.yaml with every local `$ref` inlined, so that Ajv, fast-json-stringify
 * and the OpenAPI generator each see a self-contained schema per route. Task names are typed by
 * the generated `TaskName`; the generator's staleness check keeps the two equal.
 */
export async function loadTaskDefinitions(dir: URL = SCHEMA_DIR): Promise<TaskDefinition[]> {
  const doc = parse(await readFile(new URL('tasks.yaml', dir), 'utf8')) as Record<string, RawTask>
  return Promise.all(
    Object.entries(doc).map(async ([name, raw]) => ({
      name: name as TaskName,
      taskId: raw['task-id'],
      title: raw.title,
      description: raw.description,
      bodyLimit: raw['body-limit'],
      input: await inlineRefs(raw.input),
      output: await inlineRefs(raw.output),
      examples: raw.examples ?? {},
      streams: raw.streams ?? {},
      uploads: Object.fromEntries(
        Object.entries(raw.uploads ?? {}).map(([field, upload]) => [
          field,
          {
            maxBytes: upload['max-bytes'],
            ...(upload.description !== undefined && { description: upload.description }),
          },
        ]),
      ),
    })),
  )
}

export async function loadComponentDefinition(dir: URL = SCHEMA_DIR): Promise<ComponentDefinition> {
  return parse(await readFile(new URL('definition.yaml', dir), 'utf8')) as ComponentDefinition
}

interface RawTask {
  'task-id': string
  title: string
  description: string
  'body-limit': 'json' | 'media'
  input: JsonSchema
  output: JsonSchema
  examples?: TaskDefinition['examples']
  streams?: TaskDefinition['streams']
  uploads?: Record<string, { 'max-bytes': number; description?: string }>
}

async function inlineRefs(schema: JsonSchema): Promise<JsonSchema> {
  const copy = structuredClone(schema)
  const resolved = (await $RefParser.dereference(copy, { dereference: { circular: false } })) as JsonSchema
  delete resolved.$defs
  return resolved
}
