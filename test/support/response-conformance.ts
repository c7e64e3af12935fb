// Every answer a test app sends, recorded and judged against the OpenAPI document that app serves,
// so that the document cannot drift from the code (issue 24). RESPONSE_CONFORMANCE picks what a
// mismatch does: `fail` the test, `report` it as a diagnostic, or `off` (record nothing).
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { answerProblems, describeProblems, isJsonMedia, mediaTypeOf, type Answer } from './openapi-answers.ts'

export type ConformanceMode = 'fail' | 'report' | 'off'

const MODES: readonly ConformanceMode[] = ['fail', 'report', 'off']

/** RESPONSE_CONFORMANCE, or the default: report until the document covers every answer. */
export function conformanceMode(value = process.env.RESPONSE_CONFORMANCE): ConformanceMode {
  if (value === undefined || value === '') return 'report'
  if (!(MODES as string[]).includes(value)) throw new Error(`RESPONSE_CONFORMANCE must be one of ${MODES.join(', ')}`)
  return value as ConformanceMode
}

const isText = (contentType: string | undefined): boolean => {
  const media = contentType === undefined ? '' : mediaTypeOf(contentType)
  return isJsonMedia(media) || media.startsWith('text/')
}

function sentOf(payload: unknown, contentType: string | undefined): Pick<Answer, 'sent' | 'body'> {
  if (payload === null || payload === undefined || payload === '') return { sent: 'nothing' }
  if (typeof payload === 'string') return { sent: 'text', body: payload }
  if (payload instanceof Uint8Array) {
    if (payload.byteLength === 0) return { sent: 'nothing' }
    return isText(contentType) ? { sent: 'text', body: Buffer.from(payload).toString('utf8') } : { sent: 'bytes' }
  }
  return { sent: 'stream' }
}

const headersOf = (reply: FastifyReply): Record<string, unknown> => {
  const headers: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(reply.getHeaders())) headers[name.toLowerCase()] = value
  return headers
}

/**
 * Record every answer `app` sends on a route the document describes (not the 404 handler, not
 * routes with `schema.hide`). Add it before the routes, so that the hook reaches all of them.
 */
export function recordAnswers(app: FastifyInstance): Answer[] {
  const answers: Answer[] = []
  const recorded = new WeakMap<FastifyRequest, Answer>()
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.is404) return payload
    const { url, method, schema } = request.routeOptions
    const options = schema as { hide?: boolean; tags?: string[] } | undefined
    if (url === undefined || options?.hide || options?.tags?.includes('X-HIDDEN')) return payload
    const contentType = reply.getHeader('content-type')
    const type = contentType === undefined ? undefined : String(contentType)
    const answer: Answer = {
      method: String(method ?? request.method),
      route: url,
      status: reply.statusCode,
      ...(type === undefined ? {} : { contentType: type }),
      ...sentOf(payload, type),
      headers: headersOf(reply),
    }
    answers.push(answer)
    recorded.set(request, answer)
    return payload
  })
  // Headers a stream's pipeline adds after onSend went out with the answer too.
  app.addHook('onResponse', async (request, reply) => {
    const answer = recorded.get(request)
    if (answer) answer.headers = headersOf(reply)
  })
  return answers
}

/**
 * Judge `answers` against the document `documentOf` gives (asked only when there are answers, as
 * building one costs milliseconds); fails the test or reports, as `mode` says.
 */
export function assertAnswersConform(
  t: Pick<TestContext, 'diagnostic'>,
  documentOf: () => object,
  answers: Answer[],
  mode: ConformanceMode = conformanceMode(),
): void {
  if (mode === 'off' || answers.length === 0) return
  const problems = answerProblems(documentOf(), answers)
  answers.length = 0
  if (problems.length === 0) return
  const text = `answers the OpenAPI document does not describe:\n${describeProblems(problems)}`
  if (mode === 'report') t.diagnostic(text)
  else assert.fail(text)
}
