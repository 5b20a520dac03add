// isolated-vm hands a string a cell returns (its state, its answer) to the host as an
// external string, whose bytes V8 does not count toward the host's heap. The host's own
// heap stays small, so V8 never sees a reason to collect, and every message leaves its
// text behind: a keyed shard of 2,000 keys (its state 250 KB) grew the host by about that
// much per read, until the node killed the host for passing its memory limit after about
// 1,000 reads. The host collects once that many characters have come out of isolates
// since its last collection.

/** characters out of isolates between two collections (a full GC of the host's small heap costs milliseconds) */
export const COLLECT_EVERY_CHARS = 32 * 2 ** 20

export class ExternalStrings {
  private since = 0

  constructor (private readonly collect: () => void, private readonly every = COLLECT_EVERY_CHARS) {}

  /** `chars` more came out of an isolate; collects when the total since the last collection passes the bound */
  note (chars: number): void {
    this.since += chars
    if (this.since < this.every) return
    this.since = 0
    this.collect()
  }
}

/** The host's: collects with the gc the host's `--expose-gc` flag gives (cell-host-process.ts CELL_HOST_FLAGS). */
export function hostExternalStrings (): ExternalStrings {
  const gc = (globalThis as { gc?: () => void }).gc
  if (typeof gc !== 'function') throw new Error('the cell host needs --expose-gc: without it, texts out of isolates are never collected')
  return new ExternalStrings(gc)
}
