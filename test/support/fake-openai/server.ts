// The HTTP server: each request read, recorded, checked, answered (behaviour, handler or reply) and written out.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { BehaviourQueue, playBehaviour, type Cut, type Exchange } from './behaviours.ts'
import { bodyBreach, type Breach } from './checks.ts'
import { operationOf } from './contract.ts'
import { errorReply } from './errors.ts'
import { modelOf, withDeploymentModel, type Flavour, type Route } from './flavours.ts'
import type { ServedImages } from './images.ts'
import { isOperation, REPLIES } from './operations.ts'
import type { RateLimits } from './rate-limits.ts'
import { bodyReply, JSON_TYPE, type Reply } from './reply.ts'
import { normalizePath, parseBody, pathMatches, readRequest } from './request.ts'
import type { CustomHandler, RecordedRequest, Violation } from './types.ts'

export interface StandInOptions {
  flavour: Flavour
  validate: boolean
  requireAuth: boolean
  apiKey: string | undefined
  /** The models (Azure: deployments) served; undefined serves any. */
  models: Set<string> | undefined
  chunkDelayMs: number
  record: boolean
  rateLimits: RateLimits
}

/** The pauses between chunks and before slow answers; `stop()` (and so `close()`) cuts every one short. */
export class Pauses {
  closing = false
  readonly #wakers = new Set<() => void>()

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closing) return resolve()
      const wake = (): void => {
        clearTimeout(timer)
        this.#wakers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#wakers.add(wake)
    })
  }

  close(): void {
    this.closing = true
    for (const wake of [...this.#wakers]) wake()
  }

  /** Pause again after a restart. */
  reopen(): void {
    this.closing = false
  }
}

/** The running stand-in: what it recorded, what is scripted, and the images it serves. */
export interface StandIn {
  options: StandInOptions
  /** 'http://127.0.0.1:PORT' */
  origin: string
  port: number
  requests: RecordedRequest[]
  /** Requests received, recorded or not, by the path they are known by ('/v1/chat/completions' on either flavour). */
  counts: Map<string, number>
  violations: Violation[]
  behaviours: BehaviourQueue
  /** Default answers a test replaced, by path. */
  handlers: Map<string, CustomHandler>
  served: ServedImages
  pauses: Pauses
  /** Stop listening and destroy every open socket (hung ones too); `restart()` listens again. */
  stop(): Promise<void>
  /** Listen again on the same port after `stop()`. */
  restart(): Promise<void>
  /** Stop for good. */
  close(): Promise<void>
}

/** Check a POST to an operation and record its breaches; OpenAI's answer to the first breach, if any. */
function checkPost(
  standIn: StandIn,
  rec: RecordedRequest,
  { route, op }: Call,
  bodyProblem: string | undefined,
): Reply | undefined {
  const { flavour, validate, requireAuth, apiKey } = standIn.options
  const breaches = [
    ...flavour.breaches(rec, route, { requireAuth, apiKey }),
    validate ? bodyBreach(rec, op, bodyProblem, route.deployment) : undefined,
  ].filter((b): b is Breach => b !== undefined)
  for (const { errors } of breaches) {
    standIn.violations.push({ path: rec.path, errors })
    rec.contractErrors = errors
  }
  // Unchecked, a body that does not parse still gets OpenAI's 400 (and no violation).
  if (!validate && bodyProblem) return errorReply(400, bodyProblem)
  return breaches[0]?.reply
}

/** A POST to an operation: the path it came on, the operation it stands for. */
interface Call {
  route: Route
  op: string
}

/**
 * The operation's reply to a POST (404 for a model not served), 405 to other methods, the images
 * answered by URL, 404 for the rest.
 */
async function normalAnswer(
  standIn: StandIn,
  rec: RecordedRequest,
  pathname: string,
  route: Route | undefined,
  op: string | undefined,
): Promise<Reply> {
  if (route && op && rec.method === 'POST' && isOperation(op)) {
    const { models, flavour } = standIn.options
    const model = modelOf(rec, route)
    if (models && model !== undefined && !models.has(model)) return flavour.unserved(model)
    return REPLIES[op](withDeploymentModel(rec, route), standIn)
  }
  if (op) {
    const reply = errorReply(405, `Method not allowed: ${rec.method} ${pathname}. Use POST.`)
    return { ...reply, headers: { 'content-type': JSON_TYPE, allow: 'POST' } }
  }
  const img = rec.method === 'GET' ? standIn.served.get(pathname) : undefined
  if (img) return bodyReply(200, img.type, img.data)
  return standIn.options.flavour.notFound(rec.method, pathname)
}

/** Write a reply with OpenAI's headers, chunk by chunk, recording what goes out; `cut` stops it early. */
async function send(standIn: StandIn, x: Exchange, reply: Reply, cut?: Cut): Promise<void> {
  const { res, rec } = x
  if (res.destroyed) return
  const { flavour, rateLimits } = standIn.options
  const headers: Record<string, string> = {
    'x-request-id': rec.requestId,
    ...flavour.headers(),
    // Real OpenAI sends its rate-limit headers on every answer; scripted ones go on every success.
    ...(reply.status < 400 ? rateLimits.headers : undefined),
    ...(reply.streamed ? {} : { 'content-length': String(reply.chunks.reduce((a, c) => a + c.length, 0)) }),
  }
  for (const [k, v] of Object.entries(reply.headers)) headers[k.toLowerCase()] = v
  rec.responseStatus = reply.status
  rec.responseHeaders = headers
  rec.responseBody = Buffer.alloc(0)
  res.writeHead(reply.status, headers)
  let parts = reply.chunks
  if (cut && parts.length < 2 && parts[0]) {
    // One chunk (a JSON body): cut it in half.
    const whole = parts[0]
    parts = [whole.subarray(0, Math.ceil(whole.length / 2)), whole.subarray(Math.ceil(whole.length / 2))]
  }
  for (let i = 0; i < parts.length; i++) {
    if (cut && i >= cut.after) {
      if (!cut.stall) x.destroy(false) // a stall keeps the socket open and says nothing more (close() ends it)
      return
    }
    if (res.destroyed) return
    res.write(parts[i])
    rec.responseBody = Buffer.concat([rec.responseBody, parts[i]!])
    if (parts.length > 1 && i < parts.length - 1) await standIn.pauses.sleep(standIn.options.chunkDelayMs)
  }
  if (!res.destroyed) res.end()
}

async function handle(standIn: StandIn, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const rec = await readRequest(req)
  const readFailed = rec.aborted
  const { flavour, rateLimits } = standIn.options
  const pathname = normalizePath(rec.path)
  const route = flavour.route(rec.path)
  // What behaviours, handlers, rate limits and counts know the request by: its operation's OpenAI path.
  const apiPath = route?.pathname ?? flavour.outside(pathname)
  if (route?.deployment !== undefined) rec.deployment = route.deployment
  let destroyedByUs = false
  res.on('close', () => {
    if (!res.writableFinished && !destroyedByUs && !standIn.pauses.closing) rec.aborted = true
  })
  const bodyProblem = await parseBody(rec)
  standIn.counts.set(apiPath, (standIn.counts.get(apiPath) ?? 0) + 1)
  if (standIn.options.record) standIn.requests.push(rec)
  if (readFailed) return // the client went away while sending the body

  const op = route && operationOf(route.pathname)
  const call: Call | undefined = route && op && rec.method === 'POST' ? { route, op } : undefined
  const problem = call ? checkPost(standIn, rec, call, bodyProblem) : undefined
  const exchange: Exchange = {
    req,
    res,
    rec,
    problem,
    answer: async () => problem ?? normalAnswer(standIn, rec, pathname, route, op),
    send: (reply, cut) => send(standIn, exchange, reply, cut),
    destroy(reset) {
      destroyedByUs = true
      const s = req.socket
      if (reset && typeof s.resetAndDestroy === 'function') s.resetAndDestroy()
      else s.destroy()
    },
    async pause(ms) {
      await standIn.pauses.sleep(ms)
      return !standIn.pauses.closing && !res.destroyed
    },
  }

  const behaviour = standIn.behaviours.take(apiPath)
  if (behaviour) {
    rec.behaviour = behaviour
    return playBehaviour(behaviour, exchange)
  }
  // A scripted rate limit refuses a call as a behaviour would (a breach is still recorded).
  const limited = call && rateLimits.take(apiPath)
  if (call && limited) return exchange.send(flavour.rateLimited(rec, call.route, limited, rateLimits.headers))
  const custom = [...standIn.handlers].find(([p]) => pathMatches(p, apiPath))?.[1]
  if (custom && !problem) return custom(req, res, rec)
  return exchange.send(await exchange.answer())
}

/** Listen on 127.0.0.1, an ephemeral port (the same one again on `restart()`). */
export async function startServer(options: StandInOptions): Promise<StandIn> {
  const sockets = new Set<Socket>()
  // Requests come once the port is known, and `standIn` below is set by then.
  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    handle(standIn, req, res).catch((err: unknown) => {
      // A bug in the stand-in itself: say so loudly rather than hang the test.
      console.error('fake-openai: handler failed', err)
      if (!res.headersSent && !res.destroyed) {
        const r = errorReply(500, `fake-openai internal error: ${err instanceof Error ? err.message : String(err)}`)
        res.writeHead(r.status, r.headers).end(r.chunks[0])
      } else res.destroy()
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const listen = (port: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve((server.address() as AddressInfo).port)
      })
    })
  const port = await listen(0)

  const pauses = new Pauses()
  let stopped: Promise<void> | undefined
  let restarting: Promise<void> | undefined
  let closed = false
  const standIn: StandIn = {
    options,
    origin: `http://127.0.0.1:${port}`,
    port,
    requests: [],
    counts: new Map(),
    violations: [],
    behaviours: new BehaviourQueue(),
    handlers: new Map(),
    served: new Map(),
    pauses,
    stop() {
      if (restarting) return restarting.then(() => standIn.stop())
      if (stopped) return stopped
      pauses.close()
      stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      server.closeAllConnections()
      return stopped
    },
    async restart() {
      if (closed) throw new Error('fake-openai: restart() after close()')
      if (!stopped) return
      // The port the clients know (EADDRINUSE if something took it meanwhile; stopped, it can be tried again).
      restarting ??= stopped
        .then(() => listen(port))
        .then(() => {
          stopped = undefined
          pauses.reopen()
        })
        .finally(() => {
          restarting = undefined
        })
      return restarting
    },
    close() {
      closed = true
      return standIn.stop()
    },
  }
  return standIn
}
