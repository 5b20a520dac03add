// The whole-mesh simulation's network: every envelope gets a delivery tick (delay), and may
// be lost, duplicated, or dropped by a partition (symmetric or one-way). A stalled node
// (SIGSTOP) receives nothing while stalled: what reaches it waits, as in its socket buffers,
// and is delivered when it resumes. Envelopes due in one tick are delivered in a random
// order, so delays and shuffling together reorder traffic.
export interface Envelope<T> {
  from: string
  to: string
  body: T
}

export interface MeshFaults {
  loss: number
  duplicate: number
  /** delays are uniform in [0, maxDelay] ticks … */
  maxDelay: number
  /** … except with this probability, a long delay of up to `longDelayTicks` */
  longDelay: number
}

export const CALM: MeshFaults = { loss: 0, duplicate: 0, maxDelay: 1, longDelay: 0 }

export class MeshNetwork<T> {
  private readonly buckets = new Map<number, Array<Envelope<T>>>()
  private readonly blocked = new Set<string>()
  /** envelopes held for stalled nodes until they resume */
  private readonly held = new Map<string, Array<Envelope<T>>>()
  readonly stalled = new Set<string>()
  faults: MeshFaults = CALM

  constructor (private readonly rand: () => number, private readonly longDelayTicks: number) {}

  block (from: string, to: string): void {
    this.blocked.add(`${from}>${to}`)
  }

  isBlocked (from: string, to: string): boolean {
    return this.blocked.has(`${from}>${to}`)
  }

  heal (): void {
    this.blocked.clear()
  }

  split (a: string[], b: string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y)
        this.block(y, x)
      }
    }
  }

  send (e: Envelope<T>, now: number): void {
    if (this.isBlocked(e.from, e.to) || this.rand() < this.faults.loss) return
    this.enqueue(e, now)
    if (this.rand() < this.faults.duplicate) this.enqueue(e, now)
  }

  private enqueue (e: Envelope<T>, now: number): void {
    const f = this.faults
    const delay = this.rand() < f.longDelay ? Math.floor(this.rand() * this.longDelayTicks) : Math.floor(this.rand() * (f.maxDelay + 1))
    const due = now + delay
    let bucket = this.buckets.get(due)
    if (bucket === undefined) this.buckets.set(due, bucket = [])
    bucket.push(e)
  }

  resume (node: string): Array<Envelope<T>> {
    this.stalled.delete(node)
    const held = this.held.get(node) ?? []
    this.held.delete(node)
    return held
  }

  /** Envelopes due at `now`, shuffled; those for stalled nodes are held back. */
  takeDue (now: number): Array<Envelope<T>> {
    const bucket = this.buckets.get(now)
    if (bucket === undefined) return []
    this.buckets.delete(now)
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1))
      const t = bucket[i]
      bucket[i] = bucket[j]
      bucket[j] = t
    }
    const out: Array<Envelope<T>> = []
    for (const e of bucket) {
      if (this.isBlocked(e.from, e.to)) continue
      if (this.stalled.has(e.to)) {
        const h = this.held.get(e.to) ?? []
        h.push(e)
        this.held.set(e.to, h)
      } else out.push(e)
    }
    return out
  }
}
