import type OpenAI from 'openai'
import pMap from 'p-map'
import type { TextEmbeddingsInput, TextEmbeddingsOutput } from '../generated/task-types.ts'
import { embeddingsAnswerBytes } from '../upstream/answer-limits.ts'
import { parseUpstreamJson } from '../upstream/openai-upstream.ts'
import { badUpstreamResponse } from '../upstream/upstream-errors.ts'
import { RawJson } from './raw-json.ts'
import type { TaskContext } from './task-context.ts'
import { countOf } from './upstream-counts.ts'
import { embeddingsAnswer, embeddingsCall } from '../tracing/genai-attributes.ts'
import { traceCall } from '../tracing/model-call.ts'

export function toEmbeddingRequest(input: TextEmbeddingsInput): OpenAI.EmbeddingCreateParams {
  return {
    model: input.model,
    input: input.text,
    encoding_format: 'float',
    ...(input.dimensions !== undefined && { dimensions: input.dimensions }),
  }
}

/** One embedding: from the cache when this caller asked for it before, else from OpenAI (then kept). */
export async function runTextEmbeddings(
  input: TextEmbeddingsInput,
  ctx: TaskContext,
): Promise<TextEmbeddingsOutput | RawJson> {
  const body = toEmbeddingRequest(input)
  const lookup = await ctx.cache?.lookup([body])
  const hit = lookup?.hits[0]
  if (hit !== undefined) return new RawJson(hit)
  const [result] = await requestEmbeddings(ctx, body, 1)
  if (result instanceof Error) throw result
  await lookup?.keep([outputText(result)])
  return result!
}

type EmbeddingResult = TextEmbeddingsOutput | RawJson | Error

/** An item's output as the cache keeps it: its JSON text; none for an error, or for what came from the cache. */
function outputText(result: EmbeddingResult | undefined): string | undefined {
  if (result === undefined || result instanceof Error) return undefined
  if (!(result instanceof RawJson)) return JSON.stringify(result)
  return typeof result.text === 'string' ? result.text : undefined
}

/**
 * One embeddings request for `count` inputs, and each input's output: copied from OpenAI's
 * answer when it can be, otherwise parsed from it (an input without its embedding gets an error).
 */
async function requestEmbeddings(
  ctx: TaskContext,
  body: OpenAI.EmbeddingCreateParams,
  count: number,
): Promise<EmbeddingResult[]> {
  const span = ctx.tracer?.start(embeddingsCall(body))
  const { results } = await traceCall(
    span,
    async () => {
      const maxBytes = embeddingsAnswerBytes(count, body.dimensions)
      const text = await ctx.upstream.postForText({
        ...ctx,
        path: '/embeddings',
        model: body.model,
        body,
        maxBytes,
        span,
      })
      return { text, results: embeddingResults(ctx, body, text, count) }
    },
    ({ text }) => embeddingsAnswer(text),
  )
  return results
}

/** Each input's output, from OpenAI's answer to one embeddings request. */
function embeddingResults(
  ctx: TaskContext,
  body: OpenAI.EmbeddingCreateParams,
  text: string,
  count: number,
): EmbeddingResult[] {
  const copied = copyEmbeddings(text, count)
  if (copied) {
    ctx.usage.tokens(body.model, { prompt: copied.promptTokens })
    return copied.arrays.map((array) => new RawJson(`{"embedding":${array}}`))
  }
  const response = parseUpstreamJson<OpenAI.CreateEmbeddingResponse>(text, '/embeddings', ctx.upstream.secretsOf(ctx))
  if (!Array.isArray(response?.data)) throw badUpstreamResponse('embedding response without data')
  ctx.usage.tokens(body.model, { prompt: countOf(response.usage?.prompt_tokens) })
  const embeddings: Array<number[] | undefined> = new Array(count)
  response.data.forEach((item, position) => {
    const index = typeof item?.index === 'number' ? item.index : position
    if (index < count && isNumberList(item?.embedding)) embeddings[index] ??= item.embedding
  })
  return Array.from(embeddings, (embedding, i) =>
    embedding ? { embedding } : badUpstreamResponse(`no embedding for input ${i}`),
  )
}

function isNumberList(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((n) => typeof n === 'number')
}

const EMBEDDING_KEY = /"embedding"\s*:\s*\[/g
const INDEX_KEY = /"index"\s*:\s*(\d+)/g
const NUMBER = '-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?'
const NUMBER_ARRAY = new RegExp(`^\\[\\s*(?:${NUMBER}\\s*(?:,\\s*${NUMBER}\\s*)*)?\\]$`)
const PROMPT_TOKENS = /"prompt_tokens"\s*:\s*(\d+)/

/**
 * The text of each embedding array in OpenAI's answer, in input order and checked to be JSON
 * number arrays, copied rather than parsed and printed again (bench/README.md says what that
 * saves). Anything unusual (another count, indexes out of order, another shape, a cut answer)
 * returns undefined and the answer is parsed the ordinary way.
 */
export function copyEmbeddings(
  body: string,
  count: number,
): { arrays: string[]; promptTokens: number | undefined } | undefined {
  if (!body.trimEnd().endsWith('}')) return undefined
  const arrays: string[] = []
  EMBEDDING_KEY.lastIndex = 0
  for (let key = EMBEDDING_KEY.exec(body); key; key = EMBEDDING_KEY.exec(body)) {
    const start = key.index + key[0].length - 1
    const end = body.indexOf(']', start)
    if (end < 0) return undefined
    const array = body.slice(start, end + 1)
    if (!NUMBER_ARRAY.test(array)) return undefined
    arrays.push(array)
    EMBEDDING_KEY.lastIndex = end
  }
  if (arrays.length !== count) return undefined
  let expected = 0
  INDEX_KEY.lastIndex = 0
  for (let index = INDEX_KEY.exec(body); index; index = INDEX_KEY.exec(body)) {
    if (Number(index[1]) !== expected++) return undefined
  }
  if (expected !== count) return undefined
  const tokens = PROMPT_TOKENS.exec(body)
  return { arrays, promptTokens: tokens ? Number(tokens[1]) : undefined }
}

/** OpenAI's cap on inputs per embeddings request. */
const MAX_INPUTS_PER_REQUEST = 2048
/** Keeps a request well under OpenAI's 300k-token cap (about 4 characters a token). */
const MAX_CHARACTERS_PER_REQUEST = 1_000_000

/**
 * A batch of embeddings as few OpenAI requests as the limits allow: the items the cache has are
 * answered from it; the others that share model and dimensions go together as one `input`
 * array, split at OpenAI's caps. A failed request fails only the items it carried.
 */
export async function runTextEmbeddingsBatch(
  inputs: TextEmbeddingsInput[],
  ctx: TaskContext,
  concurrency: number,
): Promise<EmbeddingResult[]> {
  const results: EmbeddingResult[] = new Array(inputs.length)
  const lookup = inputs.length ? await ctx.cache?.lookup(inputs.map(toEmbeddingRequest), true) : undefined
  const missing: number[] = []
  inputs.forEach((_input, i) => {
    const hit = lookup?.hits[i]
    if (hit === undefined) missing.push(i)
    else results[i] = new RawJson(hit)
  })
  await pMap(
    requestGroups(inputs, missing),
    async (indexes) => {
      const body = { ...toEmbeddingRequest(inputs[indexes[0]!]!), input: indexes.map((i) => inputs[i]!.text) }
      // Traced, the call serves these items together: its span links to theirs.
      const groupCtx = ctx.batch ? { ...ctx, tracer: ctx.batch.group(indexes) } : ctx
      try {
        const outputs = await requestEmbeddings(groupCtx, body, indexes.length)
        outputs.forEach((output, k) => (results[indexes[k]!] = output))
      } catch (err) {
        for (const i of indexes) results[i] = err as Error
      }
    },
    { concurrency },
  )
  await lookup?.keep(results.map(outputText))
  return results
}

/** The OpenAI requests for the items at `indexes`: by model and dimensions, within OpenAI's caps. */
function requestGroups(inputs: TextEmbeddingsInput[], wanted: number[]): number[][] {
  const byParams = new Map<string, number[]>()
  for (const i of wanted) {
    const input = inputs[i]!
    const key = `${input.model}\u0000${input.dimensions ?? ''}`
    const group = byParams.get(key)
    if (group) group.push(i)
    else byParams.set(key, [i])
  }
  const requests: number[][] = []
  for (const indexes of byParams.values()) {
    let current: number[] = []
    let characters = 0
    for (const i of indexes) {
      const length = inputs[i]!.text.length
      if (
        current.length &&
        (current.length === MAX_INPUTS_PER_REQUEST || characters + length > MAX_CHARACTERS_PER_REQUEST)
      ) {
        requests.push(current)
        current = []
        characters = 0
      }
      current.push(i)
      characters += length
    }
    if (current.length) requests.push(current)
  }
  return requests
}
