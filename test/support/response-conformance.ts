// Every answer a test app sends, judged against the OpenAPI document that app serves, so that the
// document cannot drift from the code (issue 24). RESPONSE_CONFORMANCE picks what a mismatch
// does: `fail` the test, `report` it as a diagnostic, or `off` (nothing is recorded).
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  AnswerJudge,
  describeProblems,
  isJsonMedia,
  mediaTypeOf,
  type Answer,
  type Problem,
} from './openapi-answers.ts'

export type ConformanceMode = 'fail' | 'report' | 'off'

const MODES: readonly ConformanceMode[] = ['fail', 'report', 'off']

/** RESPONSE_CONFORMANCE, `fail` unless set: `report` is for a document being reworked. */
export function conformanceMode(value = process.env.RESPONSE_CONFORMANCE): ConformanceMode {
  if (value === undefined || value === '') return 'fail'
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
 * Call `onAnswer` with every answer `app` sends on a route the document describes (not the 404
 * handler, not routes with `schema.hide`), once its response has ended, so that headers a stream
 * adds after onSend are in it. Add it before the routes, so that the hook reaches all of them.
 */
export function recordAnswers(app: FastifyInstance, onAnswer: (answer: Answer) => void): void {
  const pending = new WeakMap<FastifyRequest, Answer>()
  // Callback style: an async hook would defer the rest of the request's lifecycle by a tick.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.is404) return done(null, payload)
    const { url, method, schema } = request.routeOptions
    const options = schema as { hide?: boolean; tags?: string[] } | undefined
    if (url === undefined || options?.hide || options?.tags?.includes('X-HIDDEN')) return done(null, payload)
    const header = reply.getHeader('content-type')
    const contentType = header === undefined ? undefined : String(header)
    const answer: Answer = {
      method: String(method ?? request.method),
      route: url,
      status: reply.statusCode,
      ...(contentType === undefined ? {} : { contentType }),
      ...sentOf(payload, contentType),
      headers: {},
    }
    // A failing onSend sends an error answer in its place: the last one is what went out.
    const first = !pending.has(request)
    pending.set(request, answer)
    if (first) {
      let ended = false
      const end = (): void => {
        if (ended) return
        ended = true
        const sent = pending.get(request)!
        sent.headers = headersOf(reply)
        onAnswer(sent)
      }
      reply.raw.once('finish', end)
      // A response whose client left never finishes; every response closes.
      reply.raw.once('close', end)
    }
    done(null, payload)
  })
}

/** What watchAnswers gives: `prepare` once the app is ready, `problems` found so far. */
export interface WatchedAnswers {
  prepare: () => void
  problems: () => Problem[]
}

/**
 * Judge every answer `app` sends as its response ends (so none is kept), against `app.swagger()`.
 * `prepare()`, once the app is ready, builds the document and its judge before any request
 * (else the first answer does, on the event loop of a test that may be timing something).
 */
export function watchAnswers(app: FastifyInstance): WatchedAnswers {
  let judge: AnswerJudge | undefined
  const prepare = (): void => {
    judge ??= new AnswerJudge(app.swagger())
  }
  recordAnswers(app, (answer) => {
    prepare()
    judge!.judge(answer)
  })
  return { prepare, problems: () => judge?.problems ?? [] }
}

/** Fail the test with `problems`, or report them as a diagnostic, as `mode` says. */
export function assertAnswersConform(
  t: Pick<TestContext, 'diagnostic'>,
  problems: Problem[],
  mode: ConformanceMode = conformanceMode(),
): void {
  if (mode === 'off' || problems.length === 0) return
  const text = `answers the OpenAPI document does not describe:\n${describeProblems(problems)}`
  if (mode === 'report') t.diagnostic(text)
  else assert.fail(text)
}
