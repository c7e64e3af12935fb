import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import multipart, { type MultipartFile } from '@fastify/multipart'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { invalidField, MalformedMultipartError, withDetails } from '../errors.ts'
import { tooLarge } from '../media/base64-media.ts'
import type { JsonSchema } from '../schemas/load-tasks.ts'

export interface UploadedFile {
  /** Where the upload was spooled on disk; removed when the response ends. */
  path: string
  filename: string
  mimetype: string
  size: number
}

export interface UploadsOptions {
  /** Input fields that may arrive as file parts, with their size limits. */
  fields: Record<string, { maxBytes: number }>
  /** The task's input schema: text parts are converted to the types it declares. */
  schema: JsonSchema
}

/** Stands in the body for a field that arrived as a file; only `request.uploads` gives its bytes. */
export const UPLOADED = '(uploaded file)'

/** The most a text part holds (a known-speaker reference is a data URL in one). */
export const MAX_TEXT_PART_BYTES = 1024 * 1024

declare module 'fastify' {
  interface FastifyRequest {
    uploads: Record<string, UploadedFile>
  }
}

/**
 * multipart/form-data for the routes of its scope: file parts (named by the input field they
 * carry) are streamed to a temporary file, so an upload never sits whole in memory, whatever the
 * order of the parts; text parts become the body fields, typed by the input schema, and the body
 * is then validated like a JSON one.
 */
async function uploads(fastify: FastifyInstance, { fields, schema }: UploadsOptions): Promise<void> {
  const spoolDirs = new WeakMap<FastifyRequest, string[]>()
  fastify.decorateRequest('uploads', null as unknown as Record<string, UploadedFile>)

  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    request.uploads = {}
    const dirs: string[] = []
    spoolDirs.set(request, dirs)
    reply.raw.once('close', () => {
      for (const dir of dirs) rm(dir, { recursive: true, force: true }).catch(() => undefined)
    })
  })

  await fastify.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: {
      fileSize: Math.max(...Object.values(fields).map((f) => f.maxBytes)),
      // Room for a stray file part to be refused by name (below) rather than by count.
      files: Object.keys(fields).length + 8,
      fields: 64,
      // Busboy cuts a longer part short without a word: one byte more shows the cut (see below).
      fieldSize: MAX_TEXT_PART_BYTES + 1,
      parts: 64 + Object.keys(fields).length,
    },
    throwFileSizeLimit: false,
    async onFile(this: FastifyRequest, part: MultipartFile) {
      const limit = fields[part.fieldname]
      if (!limit || this.uploads[part.fieldname]) {
        part.file.resume()
        throw invalidField(
          `/${part.fieldname}`,
          limit
            ? 'is given more than once'
            : `cannot be a file; files are accepted for: ${Object.keys(fields).join(', ')}`,
        )
      }
      const dir = await mkdtemp(join(tmpdir(), 'openai-tasks-upload-'))
      spoolDirs.get(this)?.push(dir)
      const path = join(dir, 'upload')
      await pipeline(part.file, createWriteStream(path))
      if (part.file.truncated) throw tooLarge(`/${part.fieldname}`, limit.maxBytes)
      this.uploads[part.fieldname] = {
        path,
        filename: part.filename,
        mimetype: part.mimetype,
        size: part.file.bytesRead,
      }
      ;(part as unknown as { value: string }).value = UPLOADED
    },
  })

  // Busboy's parse errors (no boundary, body cut short) carry no status: they are the caller's.
  fastify.setErrorHandler(async (error: Error & { statusCode?: number }, request) => {
    if (request.isMultipart() && error.statusCode === undefined) {
      throw withDetails(new MalformedMultipartError(error.message), [{ message: error.message }])
    }
    throw error
  })

  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>
  const propertyOf = (name: string): JsonSchema | undefined =>
    Object.hasOwn(properties, name) ? properties[name] : undefined
  /** The list field a part name carries: the field itself, or `name[]` as OpenAI's SDKs write it. */
  const listFieldOf = (key: string): string | undefined => {
    const name = key.endsWith('[]') ? key.slice(0, -2) : key
    return typesOf(propertyOf(name)).has('array') ? name : undefined
  }
  fastify.addHook('preValidation', async (request: FastifyRequest) => {
    if (!request.isMultipart() || !request.body || typeof request.body !== 'object') return
    const body = request.body as Record<string, unknown>
    const lists = new Map<string, unknown[]>()
    for (const [key, value] of Object.entries(body)) {
      const list = listFieldOf(key)
      refuseCutParts(list ?? key, value)
      if (list === undefined) {
        if (typeof value === 'string') body[key] = fromFormText(value, propertyOf(key))
        continue
      }
      // A list field is one part per item, whether one part or several came.
      delete body[key]
      const itemSchema = propertyOf(list)!.items as JsonSchema | undefined
      const typed = (Array.isArray(value) ? value : [value]).map((item) =>
        typeof item === 'string' ? fromFormText(item, itemSchema) : item,
      )
      lists.set(list, [...(lists.get(list) ?? []), ...typed])
    }
    for (const [name, items] of lists) body[name] = items
  })
}

/** A text part over the limit reached us cut short: refused, rather than passed on as half a value. */
function refuseCutParts(field: string, value: unknown): void {
  for (const item of Array.isArray(value) ? value : [value]) {
    if (typeof item === 'string' && Buffer.byteLength(item) > MAX_TEXT_PART_BYTES) {
      throw invalidField(
        `/${field}`,
        `is over ${MAX_TEXT_PART_BYTES} bytes, the most a text part holds; send it in a JSON body`,
      )
    }
  }
}

/** The JSON types a property schema allows, its anyOf branches included. */
function typesOf(schema: JsonSchema | undefined): Set<string> {
  const types = new Set<string>()
  for (const branch of [schema, ...((schema?.anyOf as JsonSchema[] | undefined) ?? [])]) {
    if (typeof branch?.type === 'string') types.add(branch.type)
  }
  return types
}

/** A number as JSON writes it: no hex, binary or octal, no blanks, no `Infinity`, no bare `.5` or `+1`. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

/**
 * A form field is text; give it the schema's type when the text is that type as JSON writes it
 * (`true`, `0.5`), else it stays text and validation names the field. A field that may be an
 * object takes it as JSON text.
 */
function fromFormText(text: string, schema: JsonSchema | undefined): unknown {
  const types = typesOf(schema)
  if ((types.has('number') || types.has('integer')) && JSON_NUMBER.test(text)) {
    // `1e999` is JSON but no finite number: it stays text, refused like any other.
    const value = Number(text)
    if (Number.isFinite(value)) return value
  }
  if (types.has('boolean') && (text === 'true' || text === 'false')) return text === 'true'
  if (types.has('object') && text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }
  return text
}

export default fp(uploads, { name: 'uploads' })
