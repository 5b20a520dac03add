// Shared figures for benchmarks.

/** The p-quantile (0..1) of the samples, nearest-rank; does not reorder `xs`. */
export function percentile (xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}
