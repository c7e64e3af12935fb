import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_MODELS_PER_TASK } from '../src/metrics/service-metrics.ts'
import { loadTaskDefinitions } from '../src/schemas/load-tasks.ts'
import { modelByDefault } from '../src/routes/task-route.ts'
import { TASK_FAMILIES } from '../src/tasks/model-families.ts'
import { serveWithUpstream } from './support/app.ts'
import type { FakeOpenAI } from './support/fake-openai/index.ts'

/**
 * Label values that come from callers (models, methods) or from the upstream (statuses, error
 * codes) are folded into a bounded set: whatever they send, /metrics stays small.
 */

interface Exposition {
  bytes: number
  /** `name{labels}` → value, for every sample. */
  samples: Map<string, number>
}

async function scrape(base: string): Promise<Exposition> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line)
    if (match) samples.set(match[1]!, Number(match[2]))
  }
  return { bytes: Buffer.byteLength(text), samples }
}

/** The samples named `name` whose labels include `labels`. */
function series(exposition: Exposition, name: string, labels: Record<string, string> = {}): Map<string, number> {
  const found = new Map<string, number>()
  for (const [key, value] of exposition.samples) {
    if (!key.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) found.set(key, value)
  }
  return found
}

function sum(samples: Map<string, number>): number {
  return [...samples.values()].reduce((a, b) => a + b, 0)
}

/** The distinct values of `label` among `samples`. */
function valuesOf(samples: Map<string, number>, label: string): Set<string> {
  const values = new Set<string>()
  for (const key of samples.keys()) {
    const match = new RegExp(`[{,]${label}="([^"]*)"`).exec(key)
    if (match) values.add(match[1]!)
  }
  return values
}

/** Runs `count` calls of `call`, `concurrency` at a time. */
async function pool(count: number, concurrency: number, call: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) await call(i)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

async function generate(base: string, model: string): Promise<void> {
  const res = await fetch(`${base}/v1/tasks/text-generation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'Hi' }),
  })
  assert.equal(res.status, 200, `${model}: ${await res.text()}`)
}

/** The prompt tokens the stand-in reported for the chat calls with these models. */
function promptTokens(upstream: FakeOpenAI, models: (model: string) => boolean): number {
  return upstream.requests
    .filter((rec) => rec.path === '/v1/chat/completions' && models(String(rec.json?.model)))
    .reduce((n, rec) => n + JSON.parse(rec.responseBody!.toString()).usage.prompt_tokens, 0)
}

const TOKENS = 'openai_tasks_tokens_total'
const KNOWN = ['gpt-4o-mini', 'gpt-4o-2024-11-20', 'ft:gpt-4.1-mini:acme::a1b2c3', 'o3-mini']

test('4,000 unknown model names add one `other` label, and known models keep theirs', async (t) => {
  const { upstream, base } = await serveWithUpstream(t)
  for (const model of KNOWN) await generate(base, model)
  await scrape(base) // the scrape's own series, before the count
  const before = await scrape(base)

  const n = 4000
  const unknown = (i: number): string => `compatible-model-${i}`
  await pool(n, 16, (i) => generate(base, unknown(i)))
  const after = await scrape(base)

  const ours = (e: Exposition): string[] => [...e.samples.keys()].filter((key) => key.startsWith('openai_tasks_'))
  const added = ours(after).length - ours(before).length
  t.diagnostic(`/metrics: ${before.bytes} bytes before, ${after.bytes} after ${n} models; ${added} samples added`)
  // Tokens by kind (prompt, completion), usage by unit (input, output), calls without a price.
  assert.ok(added <= 5, `${added} samples added by ${n} unknown models: one \`other\` per kind and unit at most`)
  // The process metrics may add a series or two (a new kind of GC).
  assert.ok(after.bytes - before.bytes < 8192, `/metrics grew by ${after.bytes - before.bytes} bytes`)

  const tokens = series(after, TOKENS, { task: 'text-generation' })
  assert.deepEqual(valuesOf(tokens, 'model'), new Set([...KNOWN, 'other']))
  for (const model of KNOWN) {
    assert.equal(
      sum(series(after, TOKENS, { model, kind: 'prompt' })),
      promptTokens(upstream, (m) => m === model),
      `${model} has its own label`,
    )
  }
  assert.equal(
    sum(series(after, TOKENS, { model: 'other', kind: 'prompt' })),
    promptTokens(upstream, (m) => m.startsWith('compatible-model-')),
    'the unknown models are all counted, as `other`',
  )
})

test('models a pattern admits get their own labels up to the cap, then `other`', async (t) => {
  const { base } = await serveWithUpstream(t, { ALLOWED_MODELS: 'gpt-4o-mini,caller-*' })
  await generate(base, 'gpt-4o-mini')
  await generate(base, 'caller-first')
  const n = 2 * MAX_MODELS_PER_TASK
  await pool(n, 16, (i) => generate(base, `caller-${i}`))
  await generate(base, 'gpt-4o-mini')
  const after = await scrape(base)

  const models = valuesOf(series(after, TOKENS, { task: 'text-generation' }), 'model')
  assert.equal(models.size, MAX_MODELS_PER_TASK + 1, `${MAX_MODELS_PER_TASK} models and \`other\``)
  assert.ok(models.has('other'))
  assert.ok(models.has('caller-first'), 'ALLOWED_MODELS patterns are known models')
  const requests = series(after, 'openai_tasks_http_requests_total', { route: '/v1/tasks/text-generation' })
  assert.equal(sum(requests), n + 3)
  const mini = series(after, TOKENS, { model: 'gpt-4o-mini', kind: 'prompt' })
  assert.equal(mini.size, 1, 'a model seen before the cap keeps its label after it')
})

test('statuses and methods from outside are folded too', async (t) => {
  const { upstream, base } = await serveWithUpstream(t, { UPSTREAM_MAX_RETRIES: '0' })
  // Every status a hostile upstream could answer with, but the ones the service names.
  const odd = Array.from({ length: 200 }, (_, i) => 400 + i).filter((s) => ![400, 401, 403, 404, 408, 409].includes(s))
  const statuses = odd.filter((s) => ![413, 415, 422, 429, 500, 501, 502, 503, 504].includes(s))
  for (const status of statuses) upstream.enqueue({ status, path: '/v1/embeddings' })
  await pool(statuses.length, 8, async () => {
    const res = await fetch(`${base}/v1/tasks/text-embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', text: 'Hi' }),
    })
    await res.arrayBuffer()
    assert.ok(res.status >= 400)
  })
  // WebDAV and made-up methods on made-up paths.
  const methods = ['PROPFIND', 'MKCOL', 'LOCK', 'UNLOCK', 'PURGE', 'REPORT', 'SEARCH', 'MKCALENDAR']
  await pool(400, 8, async (i) => {
    const res = await fetch(`${base}/nowhere/${i}`, { method: methods[i % methods.length]! })
    await res.arrayBuffer()
  })
  const after = await scrape(base)

  const errors = series(after, 'openai_tasks_upstream_errors_total', { operation: '/embeddings' })
  assert.deepEqual(valuesOf(errors, 'status'), new Set(['4xx', '5xx']))
  assert.equal(sum(errors), statuses.length, 'every failed call is counted')
  const unmatched = series(after, 'openai_tasks_http_requests_total', { route: 'unmatched' })
  assert.deepEqual(valuesOf(unmatched, 'method'), new Set(['other']))
  assert.equal(sum(unmatched), 400)
})

test("every task's documented models are in its families", async () => {
  for (const def of await loadTaskDefinitions()) {
    const model = (def.input.properties as Record<string, { examples?: string[] }>).model!
    const documented = [...(model.examples ?? []), modelByDefault(def)].filter((m) => m !== undefined)
    assert.ok(documented.length > 0, `${def.name} documents its models`)
    const outside = documented.filter((m) => !TASK_FAMILIES[def.name](m))
    assert.deepEqual(outside, [], `${def.name}: documented models the metrics would show as other`)
  }
})
