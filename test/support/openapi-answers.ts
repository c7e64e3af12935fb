// Judges recorded answers against an OpenAPI 3.1 document: the operation, the status, the content
// type, the required headers and the JSON body. Validators are compiled lazily, once per document.
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ErrorObject, ValidateFunction } from 'ajv'

/** One answer as the service sent it (see response-conformance.ts, which records them). */
export interface Answer {
  method: string
  /** The matched route's URL as Fastify knows it (`/v1/tasks/text-generation`, `/items/:id`). */
  route: string
  status: number
  /** The Content-Type header, parameters included, if any. */
  contentType?: string
  /** What was sent: nothing, text (a string, or a Buffer of JSON or text), other bytes, or a stream. */
  sent: 'nothing' | 'text' | 'bytes' | 'stream'
  /** The body when `sent` is 'text'; streams are not read. */
  body?: string
  /** Header names in lower case. */
  headers: Record<string, unknown>
}

/** One kind of mismatch, with how often it happened and the first answer's body. */
export interface Problem {
  where: string
  what: string
  body?: string
  count: number
}

type Json = Record<string, unknown>

const BASE = 'https://openai-tasks.test/openapi.json'
const BODY_EXCERPT = 300
const MAX_AJV_ERRORS = 3
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

interface Checker {
  document: Json
  ajv: Ajv2020
  validators: Map<string, ValidateFunction>
}

// By object for repeated calls with one document; by text for the many apps serving the same one.
const byObject = new WeakMap<object, Checker>()
const byText = new Map<string, Checker>()
const MAX_DOCUMENTS = 16

function checkerFor(document: Json): Checker {
  const known = byObject.get(document)
  if (known) return known
  const text = JSON.stringify(document)
  let checker = byText.get(text)
  if (!checker) {
    const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false, validateSchema: false })
    addFormatsModule.default(ajv)
    // `$id`s would clash inside one resource and `$schema`s name other dialects: refs go by pointer.
    // A document is no schema: checking it against the meta-schema only costs time.
    ajv.addSchema({ ...(withoutIds(JSON.parse(text)) as Json), $id: BASE })
    checker = { document, ajv, validators: new Map() }
    if (byText.size >= MAX_DOCUMENTS) byText.delete(byText.keys().next().value!)
    byText.set(text, checker)
  }
  byObject.set(document, checker)
  return checker
}

function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds)
  if (!value || typeof value !== 'object') return value
  const out: Json = {}
  for (const [key, v] of Object.entries(value)) {
    if ((key === '$id' || key === '$schema') && typeof v === 'string') continue
    out[key] = withoutIds(v)
  }
  return out
}

interface Located {
  node: Json
  /** Where the node is in the document, as a JSON pointer. */
  pointer: string
}

const escapePointer = (segment: string): string => segment.replaceAll('~', '~0').replaceAll('/', '~1')
const unescapePointer = (segment: string): string => segment.replaceAll('~1', '/').replaceAll('~0', '~')

/** `value` at `pointer`, its local `$ref`s followed (responses, headers and media types may be refs). */
function locate(document: Json, value: unknown, pointer: string): Located | undefined {
  let current = value
  let at = pointer
  for (let hops = 0; hops < 10 && current && typeof current === 'object'; hops++) {
    const ref = (current as Json).$ref
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return { node: current as Json, pointer: at }
    at = ref.slice(1)
    current = ref
      .slice(2)
      .split('/')
      .map(unescapePointer)
      .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Json)[key] : undefined), document)
  }
  return undefined
}

const child = (parent: Located, ...keys: string[]): string =>
  parent.pointer + keys.map((k) => '/' + escapePointer(k)).join('')

/** Fastify's `/items/:id` as OpenAPI's `/items/{id}`. */
const openapiPath = (route: string): string => route.replace(/:([A-Za-z0-9_]+)/g, '{$1}')

export const mediaTypeOf = (contentType: string): string => contentType.split(';')[0]!.trim().toLowerCase()

export const isJsonMedia = (media: string): boolean => media === 'application/json' || media.endsWith('+json')

/** The declared key for a status: the exact code, then its `4XX` range, then `default`. */
function declaredStatus(responses: Json, status: number): string | undefined {
  const keys = Object.keys(responses)
  const range = `${String(status)[0]}XX`
  return (
    keys.find((k) => k === String(status)) ??
    keys.find((k) => k.toUpperCase() === range) ??
    keys.find((k) => k === 'default')
  )
}

/** The declared media type an answer's type falls under: exact, then `type/*`, then `*\/*`. */
function declaredMedia(content: Json, media: string): string | undefined {
  const keys = Object.keys(content)
  const lower = (k: string): string => mediaTypeOf(k)
  return (
    keys.find((k) => lower(k) === media) ??
    keys.find((k) => lower(k) === `${media.split('/')[0]}/*`) ??
    keys.find((k) => lower(k) === '*/*')
  )
}

function describeAjv(errors: ErrorObject[]): string {
  const shown = errors.slice(0, MAX_AJV_ERRORS).map((e) => {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String(e.params.additionalProperty)})`
        : e.keyword === 'enum'
          ? ` (${JSON.stringify(e.params.allowedValues)})`
          : ''
    return `${e.instancePath || '(root)'} ${e.message ?? e.keyword}${extra}`
  })
  const more = errors.length > MAX_AJV_ERRORS ? `; … ${errors.length - MAX_AJV_ERRORS} more` : ''
  return shown.join('; ') + more
}

function validatorFor(checker: Checker, pointer: string): ValidateFunction {
  let validate = checker.validators.get(pointer)
  if (!validate) {
    // Ajv reads the fragment as a URI: `{id}`, `;` and spaces in it are percent-encoded.
    const fragment = pointer.split('/').map(encodeURIComponent).join('/')
    validate = checker.ajv.compile({ $ref: `${BASE}#${fragment}` })
    checker.validators.set(pointer, validate)
  }
  return validate
}

type Found = Omit<Problem, 'where' | 'count'>

/** What is wrong with one answer by the document: its headers, and its status, type or body. */
function answerProblem(checker: Checker, answer: Answer): Found[] {
  const { document } = checker
  const path = openapiPath(answer.route)
  const paths = (document.paths ?? {}) as Json
  const item = locate(document, paths[path], `/paths/${escapePointer(path)}`)
  const lower = answer.method.toLowerCase()
  // Fastify answers HEAD with its GET route; the document names the GET.
  const method = item && !item.node[lower] && lower === 'head' ? 'get' : lower
  const operation =
    item && HTTP_METHODS.has(method) ? locate(document, item.node[method], child(item, method)) : undefined
  if (!operation) return [{ what: 'the document has no such operation' }]
  const responses = (operation.node.responses ?? {}) as Json
  const statusKey = declaredStatus(responses, answer.status)
  const declared = Object.keys(responses).join(', ')
  if (!statusKey) return [{ what: `status ${answer.status} not declared (declared: ${declared})` }]
  const response = locate(document, responses[statusKey], child(operation, 'responses', statusKey))
  if (!response) return [{ what: `response ${statusKey} is an unresolvable $ref` }]

  const missing = Object.entries((response.node.headers ?? {}) as Json)
    .filter(([name, header]) => {
      const required = locate(document, header, '')?.node.required === true
      return required && answer.headers[name.toLowerCase()] === undefined
    })
    .map(([name]) => name)
  const found: Found[] = missing.length ? [{ what: `required header(s) missing: ${missing.join(', ')}` }] : []
  const body = bodyProblem(checker, answer, response, statusKey)
  return body ? [...found, body] : found
}

/** What is wrong with an answer's content type or JSON body by its declared response. */
function bodyProblem(checker: Checker, answer: Answer, response: Located, statusKey: string): Found | undefined {
  const content = response.node.content as Json | undefined
  const hasBody = answer.sent !== 'nothing'
  if (!answer.contentType) {
    return hasBody && content ? { what: 'a body without a Content-Type', body: answer.body } : undefined
  }
  const media = mediaTypeOf(answer.contentType)
  if (!content) return hasBody ? { what: `${media} answered, but ${statusKey} declares no content` } : undefined
  const mediaKey = declaredMedia(content, media)
  if (!mediaKey) return { what: `content type ${media} not declared (declared: ${Object.keys(content).join(', ')})` }

  if (answer.sent !== 'text' || answer.body === undefined || !isJsonMedia(media)) return
  const mediaObject = locate(checker.document, content[mediaKey], child(response, 'content', mediaKey))
  if (!mediaObject || mediaObject.node.schema === undefined) return
  let data: unknown
  try {
    data = JSON.parse(answer.body)
  } catch {
    return { what: `${media} body is not JSON`, body: answer.body }
  }
  const validate = validatorFor(checker, child(mediaObject, 'schema'))
  if (validate(data)) return
  return { what: `${media} body breaks its schema: ${describeAjv(validate.errors ?? [])}`, body: answer.body }
}

/** Distinct problems one judge keeps; more are counted, so a runaway test holds no memory. */
const MAX_PROBLEMS = 50

/**
 * Judges answers one by one against `document` and keeps one entry per route, status and kind of
 * mismatch. Judge only answers the document should describe (recordAnswers leaves hidden routes out).
 */
export class AnswerJudge {
  readonly #checker: Checker
  readonly #problems = new Map<string, Problem>()
  #uncounted = 0

  constructor(document: object) {
    this.#checker = checkerFor(document as Json)
  }

  judge(answer: Answer): void {
    const where = `${answer.method} ${answer.route} → ${answer.status}`
    let found: Found[]
    try {
      found = answerProblem(this.#checker, answer)
    } catch (err) {
      // A schema Ajv cannot compile is the document's fault too, and must not crash the process.
      found = [{ what: `could not be judged: ${(err as Error).message}` }]
    }
    for (const problem of found) {
      const key = `${where} ${problem.what}`
      const seen = this.#problems.get(key)
      if (seen) seen.count++
      else if (this.#problems.size >= MAX_PROBLEMS) this.#uncounted++
      else this.#problems.set(key, { where, ...problem, body: problem.body?.slice(0, BODY_EXCERPT), count: 1 })
    }
  }

  get problems(): Problem[] {
    const problems = [...this.#problems.values()]
    if (this.#uncounted) problems.push({ where: 'and', what: `${this.#uncounted} more of other kinds`, count: 1 })
    return problems
  }
}

/** Every way the answers differ from `document` (see AnswerJudge). */
export function answerProblems(document: object, answers: Iterable<Answer>): Problem[] {
  const judge = new AnswerJudge(document)
  for (const answer of answers) judge.judge(answer)
  return judge.problems
}

/** Problems as lines a test failure or diagnostic can show. */
export function describeProblems(problems: Problem[]): string {
  return problems
    .map((p) => {
      const times = p.count > 1 ? ` (×${p.count})` : ''
      const body = p.body === undefined ? '' : `\n    body: ${p.body}`
      return `  ${p.where}${times}: ${p.what}${body}`
    })
    .join('\n')
}
