// A seeded PRNG for property-style tests (the Raft core's mulberry32): a failing seed replays exactly.
import { createRand } from '../../src/raft/core/rand.js'

export interface Prng {
  /** float in [0, 1) */
  next: () => number
  /** integer in [min, max] */
  int: (min: number, max: number) => number
  pick: <T>(items: readonly T[]) => T
}

export function prng (seed: number): Prng {
  const next = createRand(seed)
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  return { next, int, pick: items => items[int(0, items.length - 1)] }
}
