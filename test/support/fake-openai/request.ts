// What came in: the request read whole into a RecordedRequest, its body parsed as JSON or multipart.
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { JSON_PARSE_ERROR } from './errors.ts'
import type { RecordedFile, RecordedForm, RecordedRequest } from './types.ts'

/** The path without query string or trailing slash. */
export function normalizePath(p: string): string {
  let q = p.split('?')[0]!
  if (q.length > 1 && q.endsWith('/')) q = q.slice(0, -1)
  return q
}

/**
 * Whether a behaviour's or handler's path ('/chat/completions', '/v1/chat/completions', or Azure's
 * '/openai/v1/chat/completions') names `pathname` (the OpenAI path a request stands for).
 */
export function pathMatches(target: string, pathname: string): boolean {
  const t = normalizePath(target).replace(/^\/openai(?=\/v1\/)/, '')
  return t === pathname || `/v1${t}` === pathname
}

/** The request with its exact body bytes; `aborted` when the client went away while sending it. */
export async function readRequest(req: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = []
  let readFailed = false
  try {
    for await (const c of req) chunks.push(c as Buffer)
  } catch {
    readFailed = true
  }
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: req.headers,
    raw: Buffer.concat(chunks),
    aborted: readFailed,
    requestId: `req_${randomBytes(16).toString('hex')}`,
    contractErrors: null,
    receivedAt: Date.now(),
  }
}

async function parseMultipart(raw: Buffer, contentType: string): Promise<RecordedForm> {
  const fd = await new Response(raw, { headers: { 'content-type': contentType } }).formData()
  const form: RecordedForm = { fields: {}, files: {}, entries: [] }
  for (const [name, value] of fd.entries()) {
    if (typeof value === 'string') {
      form.fields[name] = value
      form.entries.push([name, value])
    } else {
      const f: RecordedFile = { filename: value.name, type: value.type, data: Buffer.from(await value.arrayBuffer()) }
      form.files[name] = f
      form.entries.push([name, f])
    }
  }
  return form
}

/** Fill in `json` or `form` by the content-type; returns what OpenAI would say of a body that does not parse. */
export async function parseBody(rec: RecordedRequest): Promise<string | undefined> {
  const contentType = String(rec.headers['content-type'] ?? '')
  if (/^application\/([\w.+-]+\+)?json\b/i.test(contentType)) {
    try {
      rec.json = JSON.parse(rec.raw.toString('utf8'))
    } catch {
      return JSON_PARSE_ERROR
    }
  } else if (/^multipart\/form-data\b/i.test(contentType)) {
    try {
      rec.form = await parseMultipart(rec.raw, contentType)
    } catch (err) {
      return `Could not parse multipart form: ${err instanceof Error ? err.message : String(err)}`
    }
  }
  return undefined
}
