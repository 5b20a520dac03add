// Coalesces messages sent over a cell host link, Nagle-like but without a delay: the
// first message of a turn of the event loop leaves at once (a lone ask or reply waits for
// nothing, and the other process starts on it while this one finishes its turn); the rest
// of that turn's messages follow as one batch, so a burst costs two writes, not one each.
export class Batcher<T> {
  private queue: T[] = []
  private scheduled = false
  /** something left at once this turn: the rest waits for the end of the turn */
  private sentThisTurn = false

  /** `prelude` is asked at send time for items that go first (e.g. coalesced state). */
  constructor (private readonly send: (batch: T[]) => void, private readonly prelude?: () => T[]) {}

  push (item: T): void {
    this.queue.push(item)
    if (this.sentThisTurn) return
    this.sentThisTurn = true
    this.flush()
    this.schedule()
  }

  /**
   * Send what is queued (and the prelude) at the end of this turn. It does not hold back
   * the next push: a reply after a state change leaves at once, with the state before it.
   */
  schedule (): void {
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => {
        this.scheduled = false
        this.sentThisTurn = false
        this.flush()
      })
    }
  }

  flush (): void {
    const first = this.prelude?.() ?? []
    if (this.queue.length === 0 && first.length === 0) return
    const batch = first.length > 0 ? [...first, ...this.queue] : this.queue
    this.queue = []
    this.send(batch)
  }
}
