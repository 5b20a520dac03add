// The simulation's network: every message gets a delivery tick (delay), and may be lost,
// duplicated or blocked by a partition. Messages due in the same tick are delivered in a
// random order, so delays and shuffling together reorder traffic.
import type { Message, NodeId } from '../types.js'

export interface NetworkFaults {
  /** probability that a message is lost */
  loss: number
  /** probability that a message is delivered twice */
  duplicate: number
  /** delays are uniform in [0, maxDelay] ticks … */
  maxDelay: number
  /** … except with this probability, a long delay of up to 4×electionTick */
  longDelay: number
}

export const NO_FAULTS: NetworkFaults = { loss: 0, duplicate: 0, maxDelay: 1, longDelay: 0 }

export class SimNetwork {
  private readonly buckets = new Map<number, Message[]>()
  /** directed links that drop everything: `${from}>${to}` */
  private readonly blocked = new Set<string>()
  faults: NetworkFaults

  constructor (private readonly rand: () => number, faults: NetworkFaults, private readonly longDelayTicks: number) {
    this.faults = faults
  }

  isBlocked (from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`)
  }

  block (from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`)
  }

  heal (): void {
    this.blocked.clear()
  }

  /** Blocks both directions between the two groups (nodes in neither are bridges). */
  split (a: NodeId[], b: NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y)
        this.block(y, x)
      }
    }
  }

  /** Queues a message sent at tick `now`; false when it was dropped at once. */
  send (m: Message, now: number): boolean {
    if (this.isBlocked(m.from, m.to) || this.rand() < this.faults.loss) return false
    this.enqueue(m, now)
    if (this.rand() < this.faults.duplicate) this.enqueue(m, now)
    return true
  }

  private enqueue (m: Message, now: number): void {
    const f = this.faults
    const delay = this.rand() < f.longDelay
      ? Math.floor(this.rand() * this.longDelayTicks)
      : Math.floor(this.rand() * (f.maxDelay + 1))
    const due = now + delay
    let bucket = this.buckets.get(due)
    if (bucket === undefined) this.buckets.set(due, bucket = [])
    bucket.push(m)
  }

  /** Takes the messages due at `now`, shuffled; a partition formed meanwhile still drops them. */
  takeDue (now: number): Message[] {
    const bucket = this.buckets.get(now)
    if (bucket === undefined) return []
    this.buckets.delete(now)
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1))
      const t = bucket[i]
      bucket[i] = bucket[j]
      bucket[j] = t
    }
    return bucket.filter(m => !this.isBlocked(m.from, m.to))
  }

  /** Drops everything in flight older than `now` that was never collected. */
  clearBefore (now: number): void {
    for (const due of this.buckets.keys()) {
      if (due < now) this.buckets.delete(due)
    }
  }
}
