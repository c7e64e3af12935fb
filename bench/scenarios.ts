/** What the benchmark measures: each task call, straight to the upstream and through the service. */

export interface Scenario {
  id: string
  title: string
  /** The service's route. */
  route: string
  /** The OpenAI operation the route forwards to, on the bench upstream. */
  upstreamPath: string
  /** The task's input, sent to the service. */
  input: Record<string, unknown>
  accept: string
  /** Content type the service must answer with for the scenario to be measured. */
  expectContentType: string
  /** Why the scenario is n/a when the service answers with another content type. */
  unsupported: string
}

const TEXT_GENERATION_INPUT = {
  model: 'gpt-4o-mini',
  'system-message': 'You are a helpful assistant.',
  prompt: 'Write one sentence that uses every letter of the English alphabet.',
  'max-tokens': 256,
  temperature: 0.7,
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'text-generation-json',
    title: 'text-generation JSON',
    route: '/v1/tasks/text-generation',
    upstreamPath: '/v1/chat/completions',
    input: TEXT_GENERATION_INPUT,
    accept: 'application/json',
    expectContentType: 'application/json',
    unsupported: 'the service does not answer text generation with JSON',
  },
  {
    id: 'text-generation-sse',
    title: 'text-generation SSE',
    route: '/v1/tasks/text-generation',
    upstreamPath: '/v1/chat/completions',
    input: TEXT_GENERATION_INPUT,
    accept: 'text/event-stream',
    expectContentType: 'text/event-stream',
    unsupported: 'service does not stream yet',
  },
  {
    id: 'text-embeddings',
    title: 'text-embeddings',
    route: '/v1/tasks/text-embeddings',
    upstreamPath: '/v1/embeddings',
    input: { model: 'text-embedding-3-small', text: 'The quick brown fox jumps over the lazy dog.' },
    accept: 'application/json',
    expectContentType: 'application/json',
    unsupported: 'the service does not answer text embeddings with JSON',
  },
]

/** One request, repeated by the load generator. */
export interface RequestSpec {
  url: string
  headers: Record<string, string>
  body: string
}

export interface PreparedScenario {
  direct: RequestSpec
  through: RequestSpec
}

async function post(url: string, headers: Record<string, string>, body: string): Promise<Response & { text: string }> {
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) })
  return Object.assign(res, { text: await res.text() })
}

/**
 * One request through the service first: it shows whether the service supports the scenario,
 * and the body it forwarded (read back from the bench upstream) is the direct run's body, so both
 * runs send the upstream the very same request. Resolves to the reason when n/a.
 */
export async function prepare(
  scenario: Scenario,
  serviceUrl: string,
  upstreamUrl: string,
): Promise<PreparedScenario | { skipped: string }> {
  const through: RequestSpec = {
    url: serviceUrl + scenario.route,
    headers: { 'content-type': 'application/json', accept: scenario.accept },
    body: JSON.stringify(scenario.input),
  }
  const res = await post(through.url, through.headers, through.body)
  if (res.status !== 200) {
    throw new Error(`${scenario.title}: the service answered ${res.status}: ${res.text.slice(0, 300)}`)
  }
  if (!res.headers.get('content-type')?.startsWith(scenario.expectContentType)) {
    return { skipped: scenario.unsupported }
  }

  const forwarded = await fetch(`${upstreamUrl}/_bench/last-body?path=${encodeURIComponent(scenario.upstreamPath)}`)
  if (!forwarded.ok) throw new Error(`${scenario.title}: the service did not call ${scenario.upstreamPath}`)
  const direct: RequestSpec = {
    url: upstreamUrl + scenario.upstreamPath,
    headers: { 'content-type': 'application/json', accept: scenario.accept, authorization: 'Bearer sk-bench' },
    body: await forwarded.text(),
  }
  const check = await post(direct.url, direct.headers, direct.body)
  if (check.status !== 200 || !check.headers.get('content-type')?.startsWith(scenario.expectContentType)) {
    throw new Error(`${scenario.title}: the bench upstream answered ${check.status} ${check.headers.get('content-type')}`)
  }
  return { direct, through }
}
