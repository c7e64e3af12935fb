import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.ts'
import type { TaskName } from '../generated/task-types.ts'
import type { ServiceMetrics } from '../metrics/service-metrics.ts'
import { CallBill, unpricedWarnings, type BillingDeps } from './call-bill.ts'
import { PriceTable } from './price-table.ts'
import { SpendLedger } from './spend-ledger.ts'

/** The service's spend accounting: prices, the ledger budgets are checked against, a bill per request. */
export class Spend {
  readonly ledger: SpendLedger
  readonly #deps: Omit<BillingDeps, 'observe'>
  readonly #metrics: ServiceMetrics

  private constructor(ledger: SpendLedger, prices: PriceTable, metrics: ServiceMetrics, log: FastifyBaseLogger) {
    this.ledger = ledger
    this.#metrics = metrics
    this.#deps = { prices, ledger, unpriced: unpricedWarnings(log) }
  }

  static async open(
    config: Pick<Config, 'prices' | 'rateLimit'>,
    { log, metrics }: { log: FastifyBaseLogger; metrics: ServiceMetrics },
  ): Promise<Spend> {
    const prices = new PriceTable(config.prices)
    const { redisUrl, redisCommandTimeoutMs } = config.rateLimit
    const ledger = await SpendLedger.open({ redisUrl, redisCommandTimeoutMs, log })
    return new Spend(ledger, prices, metrics, log)
  }

  /** A bill maker for the task's requests: each bill counts one request's calls for its spender. */
  billsFor(task: TaskName): (spender: string) => CallBill {
    const deps = { ...this.#deps, observe: this.#metrics.spendFor(task) }
    const usage = this.#metrics.usageFor(task)
    return (spender) => new CallBill(task, spender, usage, deps)
  }

  close(): Promise<void> {
    return this.ledger.close()
  }
}
