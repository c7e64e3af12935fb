import { createHash } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'

/** Changes whenever what a key covers or how a value is kept changes, so old entries are never read. */
export const CACHE_KEY_VERSION = 'openai-tasks-cache/1'

/**
 * The key of one answer: a SHA-256 digest of the version, the caller's scope, the task and the
 * whole OpenAI request body as the task built it, in canonical JSON, so that every field that
 * can change the answer changes the key. One JSON array: no two inputs print the same.
 */
export function cacheKey(scope: string, task: string, body: object): string {
  return createHash('sha256')
    .update(canonicalJson([CACHE_KEY_VERSION, scope, task, body]))
    .digest('base64url')
}
