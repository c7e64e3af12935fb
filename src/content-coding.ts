import type { IncomingHttpHeaders } from 'node:http'

/** No coding at all: the header empty, or `identity` in any case. */
const IDENTITY = /^[ \t]*(?:identity[ \t]*)?$/i

/**
 * Whether the request's body comes in a content coding (gzip, br...), which no parser here
 * decodes: such a body is a 415, not JSON or a form gone wrong (RFC 9110 §15.5.16). Costs one
 * header look-up when there is no Content-Encoding, as on almost every request.
 */
export function hasCodedBody(headers: IncomingHttpHeaders): boolean {
  const coding = headers['content-encoding']
  if (coding === undefined || IDENTITY.test(coding)) return false
  // A coding with no body to apply to (a proxy adding the header to a GET) harms nothing.
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0'
}
