import { toErrorResponse, type AnyError } from '../src/error-response.ts'
import { ERROR_CODES, ERROR_SCHEMA, invalidField, type ErrorCodeInfo } from '../src/errors.ts'
import { generatedBanner, markdownTable } from './markdown.ts'

export const ERRORS_DOCS_PATH = 'docs/errors.md'

/** docs/errors.md: the error body, from ERROR_SCHEMA, and every code of ERROR_CODES. */
export function renderErrorsDocs(): string {
  const example = toErrorResponse(invalidField('/temperature', 'must be <= 2') as AnyError, '5f0c2e3a-…')
  const fields = Object.entries(ERROR_SCHEMA.properties.error.properties).map(([name, schema]) => [
    `\`error.${name}\``,
    schema.description ?? '',
  ])
  const codes = Object.entries(ERROR_CODES as Record<string, ErrorCodeInfo>)
  const table = (upstream: boolean) =>
    markdownTable(
      ['status', 'code', 'meaning'],
      codes
        .filter(([code]) => code.startsWith('ERR_UPSTREAM_') === upstream)
        .map(([code, { status, meaning }]) => [String(status), `\`${code}\``, meaning]),
    )
  return `${generatedBanner('`ERROR_CODES` and `ERROR_SCHEMA` in src/errors.ts')}

# Errors

Every answer that is not 2xx has the same JSON body, with \`Content-Type: application/json\`:

\`\`\`json
${JSON.stringify(example.body, null, 2)}
\`\`\`

${markdownTable(['field', 'meaning'], fields)}

The code is the stable part: match on it, not on the message. Every answer, error or not, has an
\`X-Request-Id\` header (an incoming one is kept when it is 1 to 128 safe characters); the same id
is in the log lines of the request and is sent to OpenAI as \`X-Client-Request-Id\`.

## The service's own

${table(false)}

## OpenAI's answers

When OpenAI answers with an error, or cannot be reached, the caller gets one of these codes.
\`details[0]\` then carries what OpenAI said: \`upstream-status\`, OpenAI's \`type\`, \`param\`,
\`upstream-code\` and \`upstream-request-id\`, or the \`transport-code\` (such as
\`ECONNREFUSED\`) when it did not answer.

${table(true)}

429, 5xx and connection failures are retried first (\`UPSTREAM_MAX_RETRIES\`, exponential backoff
with jitter; OpenAI's \`Retry-After\`, \`retry-after-ms\` and \`x-should-retry\` are followed), but
only while nothing has been sent to the caller. Other statuses are never retried. A stream that
fails after it started ends with an SSE \`error\` event holding this same body
([streaming](streaming.md)); in a batch, a failed item's output is this body with its \`status\`
([batch](batch.md)).
`
}
