/**
 * A stand-in OpenTelemetry collector for tests: a real OTLP/HTTP endpoint (node:http, 127.0.0.1,
 * ephemeral port) that takes `POST /v1/traces` in either protocol, `http/json` or the default
 * `http/protobuf` (decoded by the small wire-format reader below), and keeps every span.
 *
 *   const receiver = await startOtlpReceiver(t)
 *   // the service with OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url
 *   const [span] = await receiver.waitForSpans((s) => s.name === 'chat gpt-4o-mini')
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'

export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  kind: number
  attributes: Record<string, unknown>
  status: { code: number; message: string }
  links: Array<{ traceId: string; spanId: string }>
  /** The exporting process's resource attributes (service.name, …). */
  resource: Record<string, unknown>
  startNs: bigint
  endNs: bigint
}

export interface ReceivedExport {
  contentType: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`: the value for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string
  spans: ReceivedSpan[]
  exports: ReceivedExport[]
  /** Resolves with the spans matching `match` once at least `count` have arrived. */
  waitForSpans(match: (span: ReceivedSpan) => boolean, count?: number, timeoutMs?: number): Promise<ReceivedSpan[]>
}

export async function startOtlpReceiver(t: TestContext): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const exports: ReceivedExport[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const contentType = req.headers['content-type'] ?? ''
      exports.push({ contentType, headers: req.headers, body })
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      try {
        spans.push(
          ...(contentType.startsWith('application/json')
            ? fromJson(JSON.parse(body.toString('utf8')))
            : fromProtobuf(body)),
        )
      } catch (err) {
        res.writeHead(400).end(String(err))
        return
      }
      // An empty ExportTraceServiceResponse: everything accepted.
      if (contentType.startsWith('application/json')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      } else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo

  async function waitForSpans(
    match: (span: ReceivedSpan) => boolean,
    count = 1,
    timeoutMs = 10_000,
  ): Promise<ReceivedSpan[]> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const found = spans.filter(match)
      if (found.length >= count) return found
      if (Date.now() > until) {
        assert.fail(
          `${found.length} of ${count} matching spans after ${timeoutMs} ms; received: ${spans.map((s) => s.name).join(', ') || 'none'}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  return { url: `http://127.0.0.1:${port}`, spans, exports, waitForSpans }
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON: ids are hex strings, enums numbers, 64-bit integers strings or numbers.

interface JsonKeyValue {
  key: string
  value: JsonAnyValue
}
interface JsonAnyValue {
  stringValue?: string
  boolValue?: boolean
  intValue?: string | number
  doubleValue?: number
  arrayValue?: { values?: JsonAnyValue[] }
  kvlistValue?: { values?: JsonKeyValue[] }
}
interface JsonSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  startTimeUnixNano: string | number
  endTimeUnixNano: string | number
  attributes?: JsonKeyValue[]
  links?: Array<{ traceId: string; spanId: string }>
  status?: { code?: number; message?: string }
}
interface JsonRequest {
  resourceSpans?: Array<{ resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: Array<{ spans?: JsonSpan[] }> }>
}

function jsonValue(value: JsonAnyValue): unknown {
  if (value.stringValue !== undefined) return value.stringValue
  if (value.boolValue !== undefined) return value.boolValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return value.doubleValue
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(jsonValue)
  if (value.kvlistValue) return jsonAttributes(value.kvlistValue.values)
  return null
}

function jsonAttributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, jsonValue(value)]))
}

function fromJson(request: JsonRequest): ReceivedSpan[] {
  return (request.resourceSpans ?? []).flatMap((rs) => {
    const resource = jsonAttributes(rs.resource?.attributes)
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((span) => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId ?? '',
        name: span.name,
        kind: span.kind,
        attributes: jsonAttributes(span.attributes),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
        links: (span.links ?? []).map(({ traceId, spanId }) => ({ traceId, spanId })),
        resource,
        startNs: BigInt(span.startTimeUnixNano),
        endNs: BigInt(span.endTimeUnixNano),
      })),
    )
  })
}

// ---------------------------------------------------------------------------------------------
// OTLP/protobuf: just enough of the wire format (varints, fixed64, length-delimited fields) to
// read the fields of opentelemetry/proto/trace/v1/trace.proto that the tests look at.

type Field = { number: number; varint?: bigint; bytes?: Buffer }

function fields(buf: Buffer): Field[] {
  const out: Field[] = []
  let pos = 0
  const varint = (): bigint => {
    let result = 0n
    for (let shift = 0n; ; shift += 7n) {
      const byte = buf[pos++]!
      result |= BigInt(byte & 0x7f) << shift
      if (byte < 0x80) return result
    }
  }
  while (pos < buf.length) {
    const key = Number(varint())
    const number = key >>> 3
    switch (key & 7) {
      case 0:
        out.push({ number, varint: varint() })
        break
      case 1:
        out.push({ number, bytes: buf.subarray(pos, pos + 8) })
        pos += 8
        break
      case 2: {
        const length = Number(varint())
        out.push({ number, bytes: buf.subarray(pos, pos + length) })
        pos += length
        break
      }
      case 5:
        out.push({ number, bytes: buf.subarray(pos, pos + 4) })
        pos += 4
        break
      default:
        throw new Error(`unsupported protobuf wire type ${key & 7}`)
    }
  }
  return out
}

const all = (list: Field[], number: number): Field[] => list.filter((f) => f.number === number)
const one = (list: Field[], number: number): Field | undefined => list.findLast((f) => f.number === number)

function protoValue(buf: Buffer): unknown {
  const f = fields(buf)
  const string = one(f, 1)
  if (string) return string.bytes!.toString('utf8')
  const bool = one(f, 2)
  if (bool) return bool.varint !== 0n
  const int = one(f, 3)
  if (int) return Number(BigInt.asIntN(64, int.varint!))
  const double = one(f, 4)
  if (double) return double.bytes!.readDoubleLE(0)
  const array = one(f, 5)
  if (array) return all(fields(array.bytes!), 1).map((v) => protoValue(v.bytes!))
  const kvlist = one(f, 6)
  if (kvlist) return protoAttributes(all(fields(kvlist.bytes!), 1))
  return null
}

function protoAttributes(list: Field[]): Record<string, unknown> {
  return Object.fromEntries(
    list.map((kv) => {
      const f = fields(kv.bytes!)
      return [one(f, 1)!.bytes!.toString('utf8'), protoValue(one(f, 2)?.bytes ?? Buffer.alloc(0))]
    }),
  )
}

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  return all(fields(body), 1).flatMap((resourceSpans) => {
    const rs = fields(resourceSpans.bytes!)
    const resourceField = one(rs, 1)
    const resource = resourceField ? protoAttributes(all(fields(resourceField.bytes!), 1)) : {}
    return all(rs, 2).flatMap((scopeSpans) =>
      all(fields(scopeSpans.bytes!), 2).map((spanField) => {
        const s = fields(spanField.bytes!)
        const hex = (n: number): string => one(s, n)?.bytes?.toString('hex') ?? ''
        const status = fields(one(s, 15)?.bytes ?? Buffer.alloc(0))
        return {
          traceId: hex(1),
          spanId: hex(2),
          parentSpanId: hex(4),
          name: one(s, 5)?.bytes?.toString('utf8') ?? '',
          kind: Number(one(s, 6)?.varint ?? 0n),
          attributes: protoAttributes(all(s, 9)),
          status: {
            code: Number(one(status, 3)?.varint ?? 0n),
            message: one(status, 2)?.bytes?.toString('utf8') ?? '',
          },
          links: all(s, 13).map((link) => {
            const l = fields(link.bytes!)
            return { traceId: one(l, 1)?.bytes?.toString('hex') ?? '', spanId: one(l, 2)?.bytes?.toString('hex') ?? '' }
          }),
          resource,
          startNs: one(s, 7)?.bytes?.readBigUInt64LE(0) ?? 0n,
          endNs: one(s, 8)?.bytes?.readBigUInt64LE(0) ?? 0n,
        }
      }),
    )
  })
}
