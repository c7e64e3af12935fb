import { Counter, type Registry } from 'prom-client'

interface Sum<L extends string> {
  labels: Record<L, string>
  value: number
}

/**
 * A Prometheus counter added to on the hot path by a key of the caller's making (one string and
 * one map lookup), its sums handed to prom-client only when it is scraped: prom-client would
 * otherwise hash and check the labels of every increment. A key stands for one set of labels,
 * so keys are as bounded as those labels are.
 */
export class SummedCounter<L extends string> {
  readonly #sums = new Map<string, Sum<L>>()

  constructor(config: { name: string; help: string; labelNames: L[]; registers: Registry[]; divisor?: number }) {
    const sums = this.#sums
    const divisor = config.divisor ?? 1
    // Registered in `registers`, which is what keeps it: nothing else needs to hold it.
    // eslint-disable-next-line no-new
    new Counter<L>({
      name: config.name,
      help: config.help,
      labelNames: config.labelNames,
      registers: config.registers,
      collect() {
        this.reset()
        for (const { labels, value } of sums.values()) this.inc(labels, value / divisor)
      },
    })
  }

  /** Adds `value` to the sum of `key`; `labels` is asked for only the first time a key is seen. */
  add(key: string, value: number, labels: () => Record<L, string>): void {
    const sum = this.#sums.get(key)
    if (sum) sum.value += value
    else this.#sums.set(key, { labels: labels(), value })
  }
}
