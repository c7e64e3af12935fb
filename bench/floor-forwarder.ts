/**
 * The least a gateway can do, as a reference for the service's throughput and memory: node:http
 * in, one keep-alive undici Pool out, each POST forwarded to the same path upstream with its body
 * and credentials, the answer sent back as it came. No validation, mapping, logging or metrics.
 * Run as a child process with UPSTREAM_ORIGIN; reports `{ port }` over IPC when forked.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

const origin = process.env.UPSTREAM_ORIGIN
if (!origin) throw new Error('UPSTREAM_ORIGIN is required, e.g. http://127.0.0.1:8000')
const pool = new Pool(origin, { connections: 128, keepAliveTimeout: 120_000 })

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const server = createServer(async (req, res) => {
  try {
    const upstream = await pool.request({
      method: 'POST',
      path: req.url ?? '/',
      headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
      body: await readBody(req),
    })
    const body = await upstream.body.text()
    res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') })
    res.end(body)
  } catch (err) {
    res.writeHead(502, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { message: (err as Error).message } }))
  }
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  if (process.send) process.send({ port })
  else console.log(`floor forwarder on http://127.0.0.1:${port} -> ${origin}`)
})

process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
