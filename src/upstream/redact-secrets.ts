/**
 * Secrets taken out of text that comes from the upstream (error messages, unreadable answers)
 * before it goes into an error the caller reads and the logs keep: a compatible server may echo
 * the key it was sent (`Incorrect API key provided: Bearer sk-…`) or its request headers.
 */

export const REDACTED = '[redacted]'

/** Shorter keys are placeholders (vLLM's `EMPTY`, Ollama's `ollama`), too common as words to blank out. */
const MIN_KEY_LENGTH = 8
/** What a token may be made of: anything up to the quote, bracket or separator around it. */
const TOKEN = String.raw`[^\s"'\`,;&()<>\[\]{}]+`
/** OpenAI keys (`sk-…`, `sk-proj-…`, `sk-svcacct-…`); a masked one (`sk-proj-****abcd`) shows too little to match. */
const OPENAI_KEY = /(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{8,}/g
/** A credential after its scheme: `Bearer <token>`, `Basic <user:password in base64>`. */
const SCHEME = new RegExp(String.raw`\b(Bearer|Basic)(\s+)${TOKEN}`, 'gi')
/** A credential after its header or field name: `api-key: …`, `"authorization": "Bearer …"`, `?api_key=…`. */
const FIELD = new RegExp(
  String.raw`\b((?:x-)?(?:openai-)?api[-_ ]?key|(?:proxy-)?authorization|(?:access|auth)[-_]?token|\w*secret|password)` +
    String.raw`(["']?\s*[:=]\s*["']?)(?:(?:Bearer|Basic)\s+)?${TOKEN}`,
  'gi',
)
/** Room after an excerpt's end, so that a secret it starts is whole when it is redacted (keys are ~200 characters). */
const EXCERPT_MARGIN = 1024

/** The key in use, or every key a call may have used (the caller's, the deployments'). */
export type KeysInUse = string | readonly string[] | undefined

/** `text` with the keys in use, anything shaped like an OpenAI key and any labelled credential replaced by [redacted]. */
export function redactSecrets(text: string, keys: KeysInUse): string {
  let withoutKey = text
  for (const key of typeof keys === 'string' ? [keys] : (keys ?? [])) {
    if (key.length >= MIN_KEY_LENGTH) withoutKey = withoutKey.replaceAll(key, REDACTED)
  }
  return withoutKey
    .replace(FIELD, (_match, name: string, separator: string) => `${name}${separator}${REDACTED}`)
    .replace(SCHEME, (_match, scheme: string, space: string) => `${scheme}${space}${REDACTED}`)
    .replace(OPENAI_KEY, REDACTED)
}

/** The first `length` characters of upstream text, redacted before it is cut so that no secret is cut in two first. */
export function upstreamExcerpt(text: string, keys: KeysInUse, length: number): string {
  if (text.length <= length) return redactSecrets(text, keys)
  const longest = typeof keys === 'string' ? keys.length : Math.max(0, ...(keys ?? []).map((k) => k.length))
  const window = text.slice(0, length + EXCERPT_MARGIN + longest)
  return redactSecrets(window, keys).slice(0, length)
}
