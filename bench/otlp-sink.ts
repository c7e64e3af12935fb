/**
 * An OTLP/HTTP endpoint that takes span exports and drops them, run as a child process
 * (`node bench/otlp-sink.ts`) for the tracing cost scenario: the service pays for building,
 * encoding and sending its spans, and nothing else. Reports its port, then how many exports
 * and bytes it took when asked (`GET /_bench/received`).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

let exports = 0
let bytes = 0

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/_bench/received') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ exports, bytes }))
    return
  }
  req.on('data', (chunk: Buffer) => (bytes += chunk.length))
  req.on('end', () => {
    exports++
    // An empty ExportTraceServiceResponse, in the protocol it was asked in.
    const json = String(req.headers['content-type']).startsWith('application/json')
    res
      .writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
      .end(json ? '{}' : undefined)
  })
})

server.listen({ port: 0, host: '127.0.0.1' }, () => {
  const { port } = server.address() as AddressInfo
  if (process.send) process.send({ port })
})
