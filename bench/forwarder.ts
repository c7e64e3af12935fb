/**
 * The least a Node gateway can do, as the floor to read the service against: node:http in, one
 * undici Pool (no connection cap) out, the request body forwarded, the answer's bytes piped back
 * as they come. Run as a child process with UPSTREAM_ORIGIN (and LISTEN_BACKLOG); reports `{ port }` over IPC.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pipeline } from 'node:stream/promises'
import { Pool } from 'undici'

const origin = process.env.UPSTREAM_ORIGIN
if (!origin) throw new Error('UPSTREAM_ORIGIN is required, e.g. http://127.0.0.1:8000')
const pool = new Pool(origin)

async function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const abort = new AbortController()
  // Only a caller gone before the answer ended aborts: abort() builds an AbortError each time.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort()
  })
  const upstream = await pool.request({
    method: 'POST',
    path: req.url ?? '/',
    headers: {
      'content-type': 'application/json',
      accept: req.headers.accept ?? '*/*',
      authorization: req.headers.authorization ?? '',
    },
    body: Buffer.concat(chunks),
    signal: abort.signal,
  })
  res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') })
  await pipeline(upstream.body, res)
}

const server = createServer((req, res) => {
  forward(req, res).catch((err: Error) => {
    if (!res.headersSent) {
      res
        .writeHead(502, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: err.message } }))
    } else res.destroy()
  })
})
// The service's listen backlog (LISTEN_BACKLOG, its default from startForwarder), not Node's 511:
// the floor differs from the service in code, not settings.
server.listen({ port: 0, host: '127.0.0.1', backlog: Number(process.env.LISTEN_BACKLOG ?? 4096) }, () => {
  const { port } = server.address() as AddressInfo
  if (process.send) process.send({ port })
  else console.log(`forwarder on http://127.0.0.1:${port} -> ${origin}`)
})

process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
