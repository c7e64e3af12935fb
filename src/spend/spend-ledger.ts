import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Result } from 'ioredis'
import { BudgetExceededError } from '../errors.ts'
import { outageLog, type OutageLog } from '../redis/outage-log.ts'
import { connectRedis, type WatchedRedis } from '../redis/redis-client.ts'
import type { CallerSettings } from './callers.ts'
import { LocalSpend, MAX_ROWS, type SpenderTotals, type SpendRecord, type SpendRow } from './local-spend.ts'
import { periodsAt, type Periods } from './periods.ts'
import { UNITS, type UnitCounts } from './spend-units.ts'

/** Every key the ledger writes in Redis starts with this. */
export const SPEND_NAMESPACE = 'openai-tasks-spend:'
const NANO = 1e9
// Kept a day past their period, so that yesterday's and last month's spend can still be read.
const KEEP_AFTER_PERIOD_S = 86_400
/** Records kept while Redis does not answer, sent when it does again. */
const MAX_UNSENT = 10_000
/** Records sent to Redis in one round trip at most. */
const SEND_AT_ONCE = 500
// A record's mark outlives any replay of it: a command Redis ran late ran when Redis came back.
const RECORD_MARK_TTL_S = 3_600
/** How often a Redis known to be out is asked whether it is back. */
const PROBE_EVERY_MS = 1_000

// Applies one record at most once: a replay of a record whose reply was lost finds its mark.
// KEYS: mark, day hash, month hash, day spenders, month spenders; ARGV: mark TTL, day and month
// expiry, spender, then field and increment pairs (an increment with a `.` is a float).
const RECORD_SPEND_LUA = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 5, #ARGV, 2 do
  local command = string.find(ARGV[i + 1], '.', 1, true) and 'HINCRBYFLOAT' or 'HINCRBY'
  redis.call(command, KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call(command, KEYS[3], ARGV[i], ARGV[i + 1])
end
for period = 0, 1 do
  redis.call('EXPIREAT', KEYS[2 + period], ARGV[2 + period])
  redis.call('SADD', KEYS[4 + period], ARGV[4])
  redis.call('EXPIREAT', KEYS[4 + period], ARGV[2 + period])
end
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    recordSpend(...keysThenArgs: Array<string | number>): Result<number, Context>
  }
}

interface UnsentRecord {
  /** Unique to the record, the same on every attempt to send it. */
  id: string
  record: SpendRecord
  periods: Periods
}

export interface SpendLedgerOptions {
  redisUrl: string | undefined
  redisCommandTimeoutMs: number
  log: FastifyBaseLogger
}

export interface UsageReport {
  period: string
  spenders: Map<string, SpenderTotals>
}

/**
 * What each caller spent today and this month. With Redis, every replica's spend in one place
 * (HINCRBY of integer nano-dollars per caller and period, keys that expire after it); without,
 * this process's. Budgets are checked against it before a call; a Redis that does not answer
 * lets calls pass, checked and counted locally, and what it missed is sent, each record once,
 * as soon as it answers again.
 */
export class SpendLedger {
  readonly #local = new LocalSpend()
  readonly #redis: WatchedRedis | undefined
  readonly #outage: OutageLog | undefined
  /** Counted here, not yet known to be in Redis, oldest first. */
  #unsent: UnsentRecord[] = []
  readonly #idPrefix = randomUUID()
  #recorded = 0
  #flushing = false
  #probe: NodeJS.Timeout | undefined
  #current: Periods | undefined

  private constructor(redis: WatchedRedis | undefined, outage: OutageLog | undefined) {
    this.#redis = redis
    this.#outage = outage
    if (!redis) return
    redis.redis.defineCommand('recordSpend', { numberOfKeys: 5, lua: RECORD_SPEND_LUA })
    redis.redis.on('ready', () => this.#flush())
  }

  static async open({ redisUrl, redisCommandTimeoutMs, log }: SpendLedgerOptions): Promise<SpendLedger> {
    if (!redisUrl) return new SpendLedger(undefined, undefined)
    const outage = outageLog(log, {
      store: 'spend store',
      meanwhile: 'budgets are checked and spend counted in this process only',
      counted: 'recordsKeptLocally',
    })
    const redis = await connectRedis(
      redisUrl,
      { silenceMs: redisCommandTimeoutMs },
      { log, outage, name: 'spend store' },
    )
    return new SpendLedger(redis, outage)
  }

  /** Throws ERR_BUDGET_EXCEEDED when the caller's spend of today or this month has reached its budget. */
  async admit(caller: CallerSettings | undefined): Promise<void> {
    const budget = caller?.budget
    if (!caller || !budget) return
    const periods = this.#periods()
    const [day, month] = await this.#totals(caller.name, periods)
    const now = Date.now()
    if (budget.usdPerDay !== undefined && day >= budget.usdPerDay * NANO) {
      throw exceeded(caller.name, `$${budget.usdPerDay} for UTC day ${periods.day}`, periods.dayEndsAt - now)
    }
    if (budget.usdPerMonth !== undefined && month >= budget.usdPerMonth * NANO) {
      throw exceeded(caller.name, `$${budget.usdPerMonth} for UTC month ${periods.month}`, periods.monthEndsAt - now)
    }
  }

  /** Counts one call's spend, here and (without waiting) in Redis. */
  record(record: SpendRecord): void {
    const periods = this.#periods()
    this.#local.add(periods.dayKey, record)
    this.#local.add(periods.monthKey, record)
    if (!this.#redis) return
    // Beyond this many, an outage's records are counted in this process only.
    if (this.#unsent.length >= MAX_UNSENT) return this.#outage!.missed(new Error('too many records unsent'))
    const unsent = { id: `${this.#idPrefix}:${this.#recorded++}`, record, periods }
    // Sent at once, so that the next call's check (on any replica) sees it.
    if (this.#outage!.available) this.#send([unsent]).catch(() => undefined)
    else {
      this.#unsent.push(unsent)
      this.#probeSoon()
    }
  }

  /** Today's and this month's spend of the spenders named, or of every spender. */
  async report(spenders: string[] | undefined): Promise<{ day: UsageReport; month: UsageReport; shared: boolean }> {
    const periods = this.#periods()
    const [day, month] = await Promise.all([
      this.#report(periods.dayKey, spenders),
      this.#report(periods.monthKey, spenders),
    ])
    return { day, month, shared: day.shared && month.shared }
  }

  async close(): Promise<void> {
    clearTimeout(this.#probe)
    await this.#redis?.close()
  }

  /** Today's periods, worked out again only once today has ended. */
  #periods(): Periods {
    const now = Date.now()
    if (this.#current && now < this.#current.dayEndsAt) return this.#current
    const periods = periodsAt(now)
    this.#current = periods
    this.#local.keepOnly([periods.dayKey, periods.monthKey])
    return periods
  }

  async #totals(spender: string, periods: Periods): Promise<[number, number]> {
    const local = (): [number, number] => [
      this.#local.total(periods.dayKey, spender),
      this.#local.total(periods.monthKey, spender),
    ]
    const connection = this.#redis
    if (!connection || !this.#outage?.available) return local()
    try {
      const { redis, answered } = connection
      const replies = await answered(
        redis
          .pipeline()
          .hget(keyOf(periods.dayKey, spender), 'total')
          .hget(keyOf(periods.monthKey, spender), 'total')
          .exec(),
      )
      const totals = (replies ?? []).map(([err, value]) => {
        if (err) throw err
        return Number(value ?? 0)
      })
      this.#heard()
      // Spend this process could not send yet counts too.
      const unsent = this.#unsentTotal(spender)
      return [(totals[0] ?? 0) + unsent, (totals[1] ?? 0) + unsent]
    } catch (err) {
      this.#outage.missed(err as Error)
      return local()
    }
  }

  /** Sends what waited for Redis, a round trip at a time, until none is left or Redis fails one. */
  #flush(): void {
    if (this.#flushing || !this.#unsent.length) return
    this.#flushing = true
    const next = (): Promise<void> => {
      const batch = this.#unsent.splice(0, SEND_AT_ONCE)
      return batch.length ? this.#send(batch).then(next) : Promise.resolve()
    }
    next()
      .catch(() => undefined)
      .finally(() => (this.#flushing = false))
  }

  async #send(batch: UnsentRecord[]): Promise<void> {
    const { redis, answered } = this.#redis!
    const pipeline = redis.pipeline()
    for (const unsent of batch) pipeline.recordSpend(...recordArguments(unsent))
    try {
      const replies = await answered(pipeline.exec())
      const failed = replies?.find(([err]) => err)
      if (failed) throw failed[0]
    } catch (err) {
      // Kept, and sent again with the same marks: a record Redis ran anyway is not counted twice.
      this.#unsent.unshift(...batch.slice(0, Math.max(0, MAX_UNSENT - this.#unsent.length)))
      this.#outage!.missed(err as Error)
      this.#probeSoon()
      throw err
    }
    this.#heard()
  }

  /** Redis answered: the outage, if there was one, is over, and what waited can go. */
  #heard(): void {
    this.#outage!.up()
    this.#flush()
  }

  #probeSoon(): void {
    if (this.#probe) return
    this.#probe = setTimeout(() => {
      this.#probe = undefined
      const { redis, answered } = this.#redis!
      answered(redis.ping()).then(
        () => this.#heard(),
        () => this.#probeSoon(),
      )
    }, PROBE_EVERY_MS).unref()
  }

  #unsentTotal(spender: string): number {
    let total = 0
    for (const { record } of this.#unsent) if (record.spender === spender) total += record.nanoUsd ?? 0
    return total
  }

  async #report(period: string, spenders: string[] | undefined): Promise<UsageReport & { shared: boolean }> {
    const connection = this.#redis
    const local = { period, spenders: this.#local.report(period, spenders), shared: false }
    if (!connection) return local
    try {
      const { redis, answered } = connection
      const names = spenders ?? (await answered(redis.smembers(`${SPEND_NAMESPACE}${period}`))).slice(0, 10_000)
      const pipeline = redis.pipeline()
      for (const name of names) pipeline.hgetall(keyOf(period, name))
      const replies = names.length ? await answered(pipeline.exec()) : []
      const out = new Map<string, SpenderTotals>()
      names.forEach((name, i) => {
        const [err, hash] = replies?.[i] ?? [null, {}]
        if (err) throw err
        out.set(name, totalsOf(hash as Record<string, string>))
      })
      this.#heard()
      return { period, spenders: out, shared: true }
    } catch (err) {
      this.#outage!.missed(err as Error)
      return local
    }
  }
}

function exceeded(caller: string, what: string, msLeft: number): Error {
  const seconds = Math.max(1, Math.ceil(msLeft / 1000))
  return Object.assign(new BudgetExceededError(caller, what), { retryAfterSeconds: seconds })
}

const keyOf = (period: string, spender: string) => `${SPEND_NAMESPACE}${period}:${spender}`
// `|` separates a field's parts; a model ID never needs one.
const fieldModel = (model: string) => model.replaceAll('|', '_')

/** The keys and arguments of RECORD_SPEND_LUA for one record. */
function recordArguments({ id, record, periods }: UnsentRecord): Array<string | number> {
  const day = periods.dayKey
  const month = periods.monthKey
  const row = `${record.task}|${fieldModel(record.model)}|`
  const increments: Array<string | number> = [`${row}calls`, 1]
  if (record.nanoUsd === undefined) increments.push(`${row}unpriced`, 1)
  else increments.push('total', record.nanoUsd, `${row}nano_usd`, record.nanoUsd)
  for (const [unit, value] of Object.entries(record.units)) {
    increments.push(row + unit, Number.isInteger(value) ? value : value.toFixed(6))
  }
  const expiry = (endsAt: number) => Math.ceil(endsAt / 1000) + KEEP_AFTER_PERIOD_S
  return [
    `${SPEND_NAMESPACE}record:${id}`,
    keyOf(day, record.spender),
    keyOf(month, record.spender),
    `${SPEND_NAMESPACE}${day}`,
    `${SPEND_NAMESPACE}${month}`,
    RECORD_MARK_TTL_S,
    expiry(periods.dayEndsAt),
    expiry(periods.monthEndsAt),
    record.spender,
    ...increments,
  ]
}

/** A spender's hash read back as rows. */
function totalsOf(hash: Record<string, string>): SpenderTotals {
  const rows = new Map<string, SpendRow>()
  for (const [field, text] of Object.entries(hash)) {
    const at = field.lastIndexOf('|')
    const first = field.indexOf('|')
    if (at < 0 || first === at) continue
    const task = field.slice(0, first)
    const model = field.slice(first + 1, at)
    const name = field.slice(at + 1)
    const key = `${task}|${model}`
    let row = rows.get(key)
    if (!row) {
      if (rows.size >= MAX_ROWS) continue
      row = { task, model, calls: 0, unpricedCalls: 0, nanoUsd: 0, units: {} }
      rows.set(key, row)
    }
    const value = Number(text)
    if (name === 'calls') row.calls = value
    else if (name === 'unpriced') row.unpricedCalls = value
    else if (name === 'nano_usd') row.nanoUsd = value
    else if ((UNITS as readonly string[]).includes(name)) (row.units as UnitCounts)[name as keyof UnitCounts] = value
  }
  return { nanoUsd: Number(hash.total ?? 0), rows: [...rows.values()] }
}
