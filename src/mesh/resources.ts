// What a node contributes, and the checks of what a user or an advert gives: without the
// advert's wire code (multiaddr, protobuf), so the CLI can check flags without loading it.

export interface Resources {
  /** cores (fractions allowed, kept to thousandths on the wire) */
  cpu: number
  /** bytes */
  memory: number
  /** cell slots */
  cells: number
}

/** the most cores a node may advertise: a sanity bound, not a policy */
const MAX_CPU_MILLI = 1_000_000 * 1000

export function resourcesProblem (r: Resources): string | undefined {
  if (!Number.isFinite(r.cpu) || r.cpu < 0 || r.cpu * 1000 > MAX_CPU_MILLI) return `cpu must be a number of cores ≥ 0, got ${r.cpu}`
  if (!Number.isSafeInteger(r.memory) || r.memory < 0) return `memory must be a whole number of bytes ≥ 0, got ${r.memory}`
  if (!Number.isSafeInteger(r.cells) || r.cells < 0 || r.cells > 0xffffffff) return `cells must be a whole number ≥ 0, got ${r.cells}`
  return undefined
}

/** a node name: what `stem start --name` accepts and an advert may carry */
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/

export function nodeNameProblem (name: string): string | undefined {
  return NODE_NAME.test(name) ? undefined : `invalid node name ${JSON.stringify(name.slice(0, 40))}: 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit`
}
