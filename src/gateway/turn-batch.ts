// Requests that arrive in one turn of the event loop ask their cells together. Each HTTP
// request is parsed in its own I/O callback, and cell messaging flushes what was queued
// when a synchronous run ends: asked at once, every request would leave as a frame of its
// own (one signature, one wake-up of the receiving node and its cell host each). Waiting
// for the same setImmediate lets all of a turn's asks start in one run of microtasks, so
// they leave as one batch. The wait is one event-loop turn: microseconds when idle.
export class TurnBatch {
  private next: Promise<void> | undefined

  /** resolves in the check phase of this turn of the event loop, together with every other waiter */
  async wait (): Promise<void> {
    this.next ??= new Promise(resolve => {
      setImmediate(() => {
        this.next = undefined
        resolve()
      })
    })
    await this.next
  }
}
