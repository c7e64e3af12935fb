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
      fieldSize: 1024 * 1024,
      parts: 64 + Object.keys(fields).length,
    },
    throwFileSizeLimit: false,
    async onFile(this: FastifyRequest, part: MultipartFile) {
      const limit = fields[part.fieldname]
      if (!limit || this.uploads[part.fieldname]) {
        part.file.resume()
        throw invalidField(
          `/${part.fieldname}`,
          limit ? 'is given more than once' : `cannot be a file; files are accepted for: ${Object.keys(fields).join(', ')}`,
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

  const types = propertyTypes(schema)
  fastify.addHook('preValidation', async (request: FastifyRequest) => {
    if (!request.isMultipart() || !request.body || typeof request.body !== 'object') return
    const body = request.body as Record<string, unknown>
    for (const [key, value] of Object.entries(body)) {
      if (typeof value === 'string') body[key] = fromFormText(value, types[key])
    }
  })
}

function propertyTypes(schema: JsonSchema): Record<string, string | undefined> {
  const properties = (schema.properties ?? {}) as Record<string, { type?: string }>
  return Object.fromEntries(Object.entries(properties).map(([key, prop]) => [key, prop.type]))
}

/** A form field is text; give it the schema's type when the text says so plainly. */
function fromFormText(text: string, type: string | undefined): unknown {
  if ((type === 'number' || type === 'integer') && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text)
  if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true'
  return text
}

export default fp(uploads, { name: 'uploads' })
