// Shared figures for benchmarks.

/** The p-quantile (0..1) of the samples, nearest-rank; does not reorder `xs`. */
export function percentile (xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/** Rate and latency of calls made one after another. */
export interface Latency { perSecond: number, p50: number, p99: number }

/** Times `count` sequential calls of `once` (after `warmup` untimed ones). */
export async function timeSequential (once: () => Promise<unknown>, count: number, warmup = 0): Promise<Latency> {
  for (let i = 0; i < warmup; i++) await once()
  const latencies: number[] = []
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await once()
    latencies.push(performance.now() - t)
  }
  const seconds = (performance.now() - start) / 1000
  return { perSecond: count / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

/** Calls per second of `count` calls of `once`, `inFlight` of them at a time. */
export async function timeInFlight (once: () => Promise<unknown>, inFlight: number, count: number): Promise<number> {
  let started = 0
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++
      await once()
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: inFlight }, worker))
  return count / ((performance.now() - start) / 1000)
}

/** Mean of several rounds (the machine's load varies between them). */
export function meanLatency (rounds: Latency[]): Latency {
  const avg = (f: (r: Latency) => number): number => rounds.reduce((sum, r) => sum + f(r), 0) / rounds.length
  return { perSecond: avg(r => r.perSecond), p50: avg(r => r.p50), p99: avg(r => r.p99) }
}
