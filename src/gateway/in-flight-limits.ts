// Admission control: a bounded number of requests in flight per cell and in total. A
// request over either bound is refused at once (503), never queued.

export class InFlightLimits {
  private readonly perKey = new Map<string, number>()
  private total = 0

  constructor (private readonly maxTotal: number, private readonly maxPerKey: number) {
    if (!(maxTotal >= 1) || !(maxPerKey >= 1)) throw new Error('in-flight limits must be at least 1')
  }

  /** Admits one request for `key`; returns its release function, or undefined when full. */
  tryEnter (key: string): (() => void) | undefined {
    const current = this.perKey.get(key) ?? 0
    if (this.total >= this.maxTotal || current >= this.maxPerKey) return undefined
    this.total++
    this.perKey.set(key, current + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.total--
      const left = (this.perKey.get(key) ?? 1) - 1
      if (left === 0) this.perKey.delete(key)
      else this.perKey.set(key, left)
    }
  }

  get inFlight (): number {
    return this.total
  }
}
