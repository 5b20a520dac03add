// Messages per second per key (a cell address) over a sliding window of one-second
// buckets: the `rate` the dashboard shows for each cell instance.

export interface RateMeterInit {
  /** window length in seconds; default 10 */
  windowSeconds?: number
  now?: () => number
}

export interface RateMeter {
  mark: (key: string, count?: number) => void
  /** per second, averaged over the window */
  rate: (key: string) => number
  forget: (key: string) => void
}

export function createRateMeter (init: RateMeterInit = {}): RateMeter {
  const windowSeconds = init.windowSeconds ?? 10
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) throw new Error(`windowSeconds must be a whole number ≥ 1, got ${windowSeconds}`)
  const now = init.now ?? Date.now
  // per key: counts indexed by second % window, and the second each slot belongs to
  const meters = new Map<string, { counts: number[], seconds: number[] }>()

  return {
    mark: (key, count = 1) => {
      const second = Math.floor(now() / 1000)
      let meter = meters.get(key)
      if (meter == null) {
        meter = { counts: new Array<number>(windowSeconds).fill(0), seconds: new Array<number>(windowSeconds).fill(-1) }
        meters.set(key, meter)
      }
      const slot = second % windowSeconds
      if (meter.seconds[slot] !== second) {
        meter.seconds[slot] = second
        meter.counts[slot] = 0
      }
      meter.counts[slot] += count
    },
    rate: key => {
      const meter = meters.get(key)
      if (meter == null) return 0
      const oldest = Math.floor(now() / 1000) - windowSeconds + 1
      let total = 0
      for (let i = 0; i < windowSeconds; i++) {
        if (meter.seconds[i] >= oldest) total += meter.counts[i]
      }
      return total / windowSeconds
    },
    forget: key => { meters.delete(key) }
  }
}
