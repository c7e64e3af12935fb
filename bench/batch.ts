/** The embeddings batch run's two requests: one text per request, and `size` texts per batch request. */
import type { RequestSpec } from './scenarios.ts'

const item = (i: number): Record<string, unknown> => ({
  model: 'text-embedding-3-small',
  text: `The quick brown fox jumps over the lazy dog. (${i})`,
})

const HEADERS = { 'content-type': 'application/json', accept: 'application/json' }

/** Both requests, after checking that the batch route answers one embedding per input. */
export async function prepareBatch(serviceUrl: string, size: number): Promise<{ single: RequestSpec; batch: RequestSpec }> {
  const single: RequestSpec = { url: `${serviceUrl}/v1/tasks/text-embeddings`, headers: HEADERS, body: JSON.stringify(item(0)) }
  const batch: RequestSpec = {
    url: `${serviceUrl}/v1/tasks/text-embeddings/batch`,
    headers: HEADERS,
    body: JSON.stringify({ inputs: Array.from({ length: size }, (_, i) => item(i)) }),
  }
  const res = await fetch(batch.url, { method: 'POST', headers: batch.headers, body: batch.body, signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`text-embeddings batch: the service answered ${res.status}: ${text.slice(0, 300)}`)
  const { outputs } = JSON.parse(text) as { outputs?: Array<{ embedding?: unknown[] }> }
  const embedded = outputs?.filter((o) => Array.isArray(o.embedding)).length ?? 0
  if (embedded !== size) throw new Error(`text-embeddings batch: ${embedded} embeddings for ${size} inputs: ${text.slice(0, 300)}`)
  return { single, batch }
}
