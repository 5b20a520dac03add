// A small seeded PRNG (mulberry32) for property-style tests: a failing seed replays exactly.
export interface Prng {
  /** float in [0, 1) */
  next: () => number
  /** integer in [min, max] */
  int: (min: number, max: number) => number
  pick: <T>(items: readonly T[]) => T
}

export function prng (seed: number): Prng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  return { next, int, pick: items => items[int(0, items.length - 1)] }
}
