// The receiver's dedupe window: a retried ask (same sender, same message id) is executed
// once; a retry that arrives while the first run is going waits for it, one that arrives
// later gets the recorded result. Bounded by count and age: the oldest entries go first.
export interface DedupeResult {
  ok: boolean
  text: string
}

interface Entry {
  at: number
  result?: DedupeResult
  waiters: Array<(result: DedupeResult) => void>
}

export interface DedupeWindowOptions {
  /** entries kept (default 10000) */
  maxEntries?: number
  /** ms an answered entry is kept (default 120 s) */
  ttlMs?: number
  now?: () => number
}

export class DedupeWindow {
  private readonly entries = new Map<string, Entry>()
  private readonly maxEntries: number
  private readonly ttlMs: number
  private readonly now: () => number

  constructor (options: DedupeWindowOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000
    this.ttlMs = options.ttlMs ?? 120_000
    this.now = options.now ?? Date.now
  }

  get size (): number {
    return this.entries.size
  }

  /**
   * 'run': first time: execute, then call `finish`. 'wait': a run is going or done:
   * `onResult` gets its result (at once if recorded).
   */
  begin (key: string, onResult: (result: DedupeResult) => void): 'run' | 'wait' {
    this.expire()
    const entry = this.entries.get(key)
    if (entry === undefined) {
      this.entries.set(key, { at: this.now(), waiters: [] })
      while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string)
      return 'run'
    }
    if (entry.result !== undefined) onResult(entry.result)
    else entry.waiters.push(onResult)
    return 'wait'
  }

  /** Record the result (or forget the key, if the message was not executed) and answer waiters. */
  finish (key: string, result: DedupeResult, record = true): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    if (record) {
      entry.result = result
      entry.at = this.now()
      // refresh its place in the age order
      this.entries.delete(key)
      this.entries.set(key, entry)
    } else {
      this.entries.delete(key)
    }
    for (const waiter of entry.waiters) waiter(result)
    entry.waiters = []
  }

  private expire (): void {
    const oldest = this.now() - this.ttlMs
    for (const [key, entry] of this.entries) {
      if (entry.at > oldest) break
      if (entry.result === undefined) continue
      this.entries.delete(key)
    }
  }
}
