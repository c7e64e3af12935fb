import type { FastifyBaseLogger } from 'fastify'
import type { TaskName } from '../generated/task-types.ts'
import type { ImageSettings, SpendObserver, TokenCounts, UsageRecorder } from '../metrics/service-metrics.ts'
import { costOf, emptyUsage, usdNumber, usdText, type MeasuredUsage } from './call-cost.ts'
import type { PriceTable } from './price-table.ts'
import type { Attributes } from '../tracing/model-call.ts'
import type { SpendLedger } from './spend-ledger.ts'
import { unitsOf } from './spend-units.ts'

/** The answer's header saying what the request's OpenAI calls cost. */
export const COST_HEADER = 'x-openai-tasks-cost-usd'

/** What a bill needs from the app: prices, where spend is counted, and whom to warn once. */
export interface BillingDeps {
  prices: PriceTable
  ledger: SpendLedger
  observe: SpendObserver
  /** Says once per model (and reason) that its calls are counted with cost unknown. */
  unpriced: (task: TaskName, model: string, why: string) => void
}

/**
 * One request's spend: each OpenAI call a task reports is priced, counted (metrics, ledger) as
 * it is reported, and added up for the request's `x-openai-tasks-cost-usd`.
 */
export class CallBill implements UsageRecorder {
  readonly #task: TaskName
  readonly #spender: string
  readonly #usage: UsageRecorder
  readonly #deps: BillingDeps
  #nanoUsd = 0
  #unknown = false
  #note: ((attributes: Attributes) => void) | undefined

  constructor(task: TaskName, spender: string, usage: UsageRecorder, deps: BillingDeps) {
    this.#task = task
    this.#spender = spender
    this.#usage = usage
    this.#deps = deps
  }

  get spender(): string {
    return this.#spender
  }

  /** Names the caller on the request's span now, and its cost there after each call. */
  traceOn(note: (attributes: Attributes) => void): void {
    this.#note = note
    note({ 'openai_tasks.caller': this.#spender, 'openai_tasks.cost_usd': 0 })
  }

  /** The cost as the header and the log show it: dollars, or `unknown`. */
  get costText(): string {
    return this.#unknown ? 'unknown' : usdText(this.#nanoUsd)
  }

  /** Returns the call's cost in dollars, undefined when unknown. */
  tokens(model: string, counts: TokenCounts): number | undefined {
    this.#usage.tokens(model, counts)
    const unmeasured =
      counts.prompt === undefined && counts.completion === undefined
        ? 'the answer does not say how many tokens it used'
        : undefined
    const nanoUsd = this.#charge(model, withTokens(emptyUsage(), counts), unmeasured)
    return nanoUsd === undefined ? undefined : usdNumber(nanoUsd)
  }

  speechCharacters(model: string, characters: number, tokens?: TokenCounts): void {
    this.#usage.speechCharacters(model, characters, tokens)
    const usage = withTokens(emptyUsage(), tokens)
    usage.characters = characters
    this.#charge(model, usage)
  }

  /** Returns the call's cost in dollars, undefined when unknown. */
  audioInput(model: string, bytes: number, seconds?: number, tokens?: TokenCounts): number | undefined {
    this.#usage.audioInput(model, bytes, seconds, tokens)
    const usage = withTokens(emptyUsage(), tokens)
    usage.audioSeconds = seconds ?? 0
    const measured = seconds !== undefined || (tokens && (tokens.prompt || tokens.completion))
    const nanoUsd = this.#charge(model, usage, measured ? undefined : 'the answer does not say how long the audio was')
    return nanoUsd === undefined ? undefined : usdNumber(nanoUsd)
  }

  images(model: string, count: number, settings?: ImageSettings): void {
    this.#usage.images(model, count, settings)
    const usage = withTokens(emptyUsage(), settings?.tokens)
    usage.images.push({ count, size: settings?.size ?? '1024x1024', quality: settings?.quality })
    this.#charge(model, usage)
  }

  #charge(model: string, usage: MeasuredUsage, unmeasured?: string): number | undefined {
    const price = this.#deps.prices.priceOf(model)
    const nanoUsd = price && !unmeasured ? costOf(usage, price) : undefined
    if (nanoUsd === undefined) {
      this.#unknown = true
      this.#deps.unpriced(
        this.#task,
        model,
        unmeasured ?? (price ? 'its price lacks a figure this call needs' : 'it has no price'),
      )
    } else {
      this.#nanoUsd += nanoUsd
    }
    // The known part in dollars; a call without a price marks the whole cost unknown.
    this.#note?.({
      'openai_tasks.cost_usd': usdNumber(this.#nanoUsd),
      'openai_tasks.cost_unknown': this.#unknown || undefined,
    })
    const units = unitsOf(usage)
    this.#deps.observe(this.#spender, model, units, nanoUsd)
    this.#deps.ledger.record({ spender: this.#spender, task: this.#task, model, nanoUsd, units })
    return nanoUsd
  }
}

function withTokens(usage: MeasuredUsage, counts: TokenCounts | undefined): MeasuredUsage {
  if (!counts) return usage
  usage.inputTokens = counts.prompt ?? 0
  usage.cachedInputTokens = counts.cached ?? 0
  usage.audioInputTokens = counts.audio ?? 0
  usage.imageInputTokens = counts.image ?? 0
  usage.outputTokens = counts.completion ?? 0
  usage.reasoningTokens = counts.reasoning ?? 0
  return usage
}

/** One warning per task, model and reason, however many calls. */
export function unpricedWarnings(log: FastifyBaseLogger): BillingDeps['unpriced'] {
  const said = new Set<string>()
  return (task, model, why) => {
    const key = `${task}\n${model}\n${why}`
    if (said.has(key) || said.size >= 1_000) return
    said.add(key)
    log.warn({ task, model }, `cost unknown for ${model}: ${why}; its calls are counted without a cost`)
  }
}
