// Command-line parsing shared by the seeded simulations (sim-raft, sim-mesh).
import { InvalidArgumentError } from 'commander'

/** commander parser for --seeds and --from: a non-negative integer, else a one-line error */
export function seedCount (v: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${v} is not a non-negative integer`)
  return n
}
