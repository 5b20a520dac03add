// Coalesces messages sent over an IPC channel: everything queued in one turn of the
// event loop goes as one array, so a burst of messages costs one IPC round trip.
export class Batcher<T> {
  private queue: T[] = []
  private scheduled = false

  /** `prelude` is asked at flush time for items that go first (e.g. coalesced state). */
  constructor (private readonly send: (batch: T[]) => void, private readonly prelude?: () => T[]) {}

  push (item: T): void {
    this.queue.push(item)
    this.schedule()
  }

  schedule (): void {
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => { this.flush() })
    }
  }

  flush (): void {
    this.scheduled = false
    const first = this.prelude?.() ?? []
    if (this.queue.length === 0 && first.length === 0) return
    const batch = first.length > 0 ? [...first, ...this.queue] : this.queue
    this.queue = []
    this.send(batch)
  }
}
