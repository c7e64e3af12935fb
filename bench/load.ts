/** One autocannon run, with latency percentiles kept at microsecond precision. */
import autocannon from 'autocannon'

export interface LoadSpec {
  url: string
  headers: Record<string, string>
  body: string
  connections: number
  durationSec: number
  signal?: AbortSignal
}

export interface LoadResult {
  connections: number
  durationSec: number
  /** 2xx answers. */
  requests: number
  reqPerSec: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  /** Connection errors and timeouts, and non-2xx answers: a valid run has none. */
  errors: number
  non2xx: number
}

/** Growable list of latencies (ms, fractional) of the 2xx answers. */
export class Samples {
  #values = new Float64Array(1 << 16)
  #length = 0

  push(value: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#length++] = value
  }

  get length(): number {
    return this.#length
  }

  summary(): { p50: number; p99: number; mean: number } {
    const sorted = this.#values.subarray(0, this.#length).sort()
    const at = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN
    let sum = 0
    for (const v of sorted) sum += v
    return { p50: at(0.5), p99: at(0.99), mean: sorted.length ? sum / sorted.length : NaN }
  }
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  // autocannon's own latency histogram has 1 ms resolution; the per-response event has hrtime's.
  const samples = new Samples()
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: 'POST',
        headers: spec.headers,
        body: spec.body,
        connections: spec.connections,
        pipelining: 1,
        duration: spec.durationSec,
        timeout: 10,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime)
    })
    // Removed once the run ends: a listener left on the long-lived signal would keep every
    // finished instance (and its buffers) alive, and the load generator's GC pauses growing.
    const stop = (): void => instance.stop()
    spec.signal?.addEventListener('abort', stop, { once: true })
    instance.once('done', () => spec.signal?.removeEventListener('abort', stop))
  })
  const { p50, p99, mean } = samples.summary()
  return {
    connections: spec.connections,
    durationSec: result.duration,
    requests: result['2xx'],
    reqPerSec: result['2xx'] / result.duration,
    p50Ms: p50,
    p99Ms: p99,
    meanMs: mean,
    errors: result.errors,
    non2xx: result.non2xx,
  }
}
