// A periodic sweep of deadlines that runs only while something waits on one. An idle node
// or cell host has no timer waking it several times a second (issue 22: on a VM that halts
// idle CPUs each wake-up costs far more than the sweep), and the first pending item arms it
// again. The sweep's granularity is unchanged: an item is swept within `intervalMs` of its
// deadline either way.
export class SweepTimer {
  private timer: NodeJS.Timeout | undefined

  /**
   * @param intervalMs ms between two sweeps while armed
   * @param sweep settles what is past its deadline
   * @param pending whether anything still waits (after a sweep: false disarms the timer)
   */
  constructor (private readonly intervalMs: number, private readonly sweep: () => void, private readonly pending: () => boolean) {}

  /** Something with a deadline was added: sweep every interval until nothing is pending. */
  arm (): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => {
      this.sweep()
      if (!this.pending()) this.disarm()
    }, this.intervalMs)
    this.timer.unref()
  }

  /** whether a sweep is scheduled */
  get armed (): boolean {
    return this.timer !== undefined
  }

  /** No sweep until the next `arm`. */
  disarm (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }
}
