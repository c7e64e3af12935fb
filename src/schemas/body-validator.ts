import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { validationDetails } from '../error-response.ts'
import type { FastifySchemaCompiler } from 'fastify'
import { pointerToField, validationFailure, type DetailedError } from '../errors.ts'
import { BODY_VALIDATION_OPTIONS } from './ajv-options.ts'
import type { JsonSchema } from './load-tasks.ts'

/** The bounds every body is held to beyond its schema; docs/security.md lists them. */
export const BODY_BOUNDS = {
  /** Arrays and objects nested in one another: serialising a body recurses once per level. */
  maxDepth: 64,
  /** Values a body may hold for every one of its problems to be looked for, not just the first. */
  maxValuesSearched: 10_000,
}

/** What a body (or a JSON text within one) nested past `maxDepth` is told. */
export const TOO_DEEP = `nests arrays and objects more than ${BODY_BOUNDS.maxDepth} levels deep`

// Stops at the first problem: the cost of refusing a body is that of finding one problem.
// JSON Schema 2020-12, the dialect of OpenAPI 3.1, so the document and the checks read alike.
const firstProblem = new Ajv2020(BODY_VALIDATION_OPTIONS)
// Every problem, for bodies small enough that listing them all costs little.
const everyProblem = new Ajv2020({ ...BODY_VALIDATION_OPTIONS, allErrors: true })

/** A body's problems as the 400 to answer with, or undefined when it is valid. */
export type BodyCheck = (data: unknown) => DetailedError | undefined

interface Validators {
  first: ValidateFunction
  every: ValidateFunction | undefined
}

// By the schema's text: every app (and every test) loads its own copy of the same schemas.
const compiled = new Map<string, Validators>()

/**
 * Compiles a body schema into a check whose cost is bounded whatever the body holds: a valid
 * body costs one pass, an invalid one a pass to its first problem and, when it holds at most
 * `maxValuesSearched` values, one more to list them all. A valid body nested deeper than
 * `maxDepth` is refused too. `context` names the body in problems about its root.
 */
export function compileBodyCheck(schema: JsonSchema, context = 'body'): BodyCheck {
  const key = JSON.stringify(schema)
  let validators = compiled.get(key)
  if (!validators) {
    validators = { first: firstProblem.compile(schema), every: undefined }
    compiled.set(key, validators)
  }
  const found = validators
  return (data) => {
    if (!found.first(data)) return problemsOf(data, found, schema, context)
    const tooDeep = pathDeeperThan(data, BODY_BOUNDS.maxDepth)
    if (tooDeep === undefined) return undefined
    return validationFailure([
      {
        field: pointerToField(tooDeep) || `(${context})`,
        path: tooDeep,
        message: TOO_DEEP,
        keyword: 'maxDepth',
      },
    ])
  }
}

/** The service's validator compiler: Fastify answers with the 400 the check returns. */
export const boundedSchemaCompiler: FastifySchemaCompiler<JsonSchema> = ({ schema, httpPart }) => {
  const check = compileBodyCheck(schema, httpPart ?? 'body')
  return (data: unknown) => {
    const error = check(data)
    return error ? { error } : true
  }
}

function problemsOf(data: unknown, found: Validators, schema: JsonSchema, context: string): DetailedError {
  if (!holdsAtMost(data, BODY_BOUNDS.maxValuesSearched)) {
    return validationFailure(validationDetails(found.first.errors as ErrorObject[], context), {
      unsearched: `the body holds over ${BODY_BOUNDS.maxValuesSearched} values, so other problems were not looked for`,
    })
  }
  // Compiled on the first invalid body: most apps never meet one.
  found.every ??= everyProblem.compile(schema)
  found.every(data)
  return validationFailure(validationDetails(found.every.errors as ErrorObject[], context))
}

/** Whether `data` holds at most `limit` values (itself, its items and properties, theirs...). */
export function holdsAtMost(data: unknown, limit: number): boolean {
  const pending: unknown[] = [data]
  let seen = 0
  while (pending.length) {
    if (++seen > limit) return false
    const value = pending.pop()
    if (typeof value !== 'object' || value === null) continue
    for (const child of Array.isArray(value) ? value : Object.values(value)) pending.push(child)
  }
  return true
}

// Levels down to which the path of a too-deep value is kept: enough to name the field.
const NAMED_LEVELS = 6

/**
 * The JSON pointer of an array or object nested deeper than `maxDepth` levels (named by its
 * first levels), or undefined. Walked with a stack of its own, so no depth overflows it.
 */
export function pathDeeperThan(data: unknown, maxDepth: number): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined
  const pending: Array<{ value: object; depth: number; path: string }> = [{ value: data, depth: 1, path: '' }]
  while (pending.length) {
    const { value, depth, path } = pending.pop()!
    if (depth > maxDepth) return path
    const entries = Array.isArray(value) ? value.entries() : Object.entries(value)
    for (const [key, child] of entries) {
      if (typeof child !== 'object' || child === null) continue
      const childPath = depth < NAMED_LEVELS ? `${path}/${escapePointer(String(key))}` : path
      pending.push({ value: child as object, depth: depth + 1, path: childPath })
    }
  }
  return undefined
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1')
}
