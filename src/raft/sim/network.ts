// The simulations' network: every message gets a delivery tick (delay), and may be lost,
// duplicated or blocked by a partition. Messages due in the same tick are delivered in a
// random order, so delays and shuffling together reorder traffic. A stalled node (SIGSTOP)
// receives nothing while stalled: what reaches it waits, as in its socket buffers, and is
// delivered when it resumes.
import type { NodeId } from '../types.js'

/** what the network needs of a message */
export interface Routed {
  from: NodeId
  to: NodeId
}

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

export class SimNetwork<M extends Routed> {
  private readonly buckets = new Map<number, M[]>()
  /** directed links that drop everything: `${from}>${to}` */
  private readonly blocked = new Set<string>()
  /** messages held for stalled nodes until they resume */
  private readonly held = new Map<NodeId, M[]>()
  readonly stalled = new Set<NodeId>()
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
  send (m: M, now: number): boolean {
    if (this.isBlocked(m.from, m.to) || this.rand() < this.faults.loss) return false
    this.enqueue(m, now)
    if (this.rand() < this.faults.duplicate) this.enqueue(m, now)
    return true
  }

  private enqueue (m: M, now: number): void {
    const f = this.faults
    const delay = this.rand() < f.longDelay
      ? Math.floor(this.rand() * this.longDelayTicks)
      : Math.floor(this.rand() * (f.maxDelay + 1))
    const due = now + delay
    let bucket = this.buckets.get(due)
    if (bucket === undefined) this.buckets.set(due, bucket = [])
    bucket.push(m)
  }

  /** Takes the messages due at `now`, shuffled; a partition formed meanwhile still drops them, and those for stalled nodes wait. */
  takeDue (now: number): M[] {
    const bucket = this.buckets.get(now)
    if (bucket === undefined) return []
    this.buckets.delete(now)
    for (let i = bucket.length - 1; i > 0; i--) {
      const j = Math.floor(this.rand() * (i + 1))
      const t = bucket[i]
      bucket[i] = bucket[j]
      bucket[j] = t
    }
    const due: M[] = []
    for (const m of bucket) {
      if (this.isBlocked(m.from, m.to)) continue
      if (this.stalled.has(m.to)) this.held.set(m.to, [...(this.held.get(m.to) ?? []), m])
      else due.push(m)
    }
    return due
  }

  /** Ends a stall: the messages that waited for the node, in the order they arrived. */
  resume (node: NodeId): M[] {
    this.stalled.delete(node)
    const held = this.held.get(node) ?? []
    this.held.delete(node)
    return held
  }

  /** Drops everything in flight older than `now` that was never collected. */
  clearBefore (now: number): void {
    for (const due of this.buckets.keys()) {
      if (due < now) this.buckets.delete(due)
    }
  }
}

export const PARTITION_KINDS = ['heal', 'split', 'isolate', 'asymmetric', 'bridge'] as const
export type PartitionKind = typeof PARTITION_KINDS[number]

/**
 * Replaces the partition by a random one of `kinds`: split in two, one node isolated, one
 * node cut off in one direction (asymmetric), or two sides joined only through a bridge
 * node. Returns a description for the trace.
 */
export function partitionAtRandom (net: SimNetwork<Routed>, ids: NodeId[], rand: () => number, kinds: readonly PartitionKind[] = PARTITION_KINDS): string {
  net.heal()
  const kind = kinds[Math.floor(rand() * kinds.length)]
  const shuffled = [...ids].sort(() => rand() - 0.5)
  if (kind === 'split') {
    const cut = 1 + Math.floor(rand() * (ids.length - 1))
    net.split(shuffled.slice(0, cut), shuffled.slice(cut))
  } else if (kind === 'isolate') {
    net.split(shuffled.slice(0, 1), shuffled.slice(1))
  } else if (kind === 'asymmetric') {
    const x = shuffled[0]
    const inbound = rand() < 0.5
    for (const y of shuffled.slice(1)) {
      if (inbound) net.block(y, x)
      else net.block(x, y)
    }
  } else if (kind === 'bridge') {
    const rest = shuffled.slice(1)
    const cut = 1 + Math.floor(rand() * Math.max(1, rest.length - 1))
    net.split(rest.slice(0, cut), rest.slice(cut))
  }
  return `partition ${kind} ${shuffled.join(',')}`
}
