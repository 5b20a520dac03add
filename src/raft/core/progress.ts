// The leader's view of each follower (etcd's tracker.Progress and Inflights).
import type { NodeId } from '../types.js'

export enum ProgressState {
  /** unknown match: send one append at a time and wait for the answer */
  Probe = 'probe',
  /** known match: stream appends optimistically, bounded by the inflight window */
  Replicate = 'replicate',
  /** the follower needs a snapshot; nothing else is sent until it is installed */
  Snapshot = 'snapshot'
}

/** A ring buffer of the last indexes of in-flight appends (the pipelining window). */
export class Inflights {
  private readonly buffer: number[]
  private start = 0
  count = 0

  constructor (readonly size: number) {
    this.buffer = new Array<number>(size).fill(0)
  }

  add (index: number): void {
    if (this.full()) throw new Error('raft: inflights window is full')
    this.buffer[(this.start + this.count) % this.size] = index
    this.count++
  }

  /** Frees every in-flight append up to and including `index`. */
  freeLE (index: number): void {
    while (this.count > 0 && this.buffer[this.start] <= index) {
      this.start = (this.start + 1) % this.size
      this.count--
    }
    if (this.count === 0) this.start = 0
  }

  freeFirstOne (): void {
    if (this.count === 0) return
    this.start = (this.start + 1) % this.size
    this.count--
  }

  full (): boolean {
    return this.count === this.size
  }

  reset (): void {
    this.count = 0
    this.start = 0
  }
}

export class Progress {
  match = 0
  next: number
  state = ProgressState.Probe
  /** Snapshot state: index of the snapshot being sent */
  pendingSnapshot = 0
  /** heard from since the last check-quorum round */
  recentActive = false
  /** Probe state: an append is outstanding, wait for a response or heartbeat */
  probeSent = false
  readonly inflights: Inflights
  isLearner: boolean

  constructor (next: number, maxInflight: number, isLearner: boolean) {
    this.next = next
    this.inflights = new Inflights(maxInflight)
    this.isLearner = isLearner
  }

  private resetState (state: ProgressState): void {
    this.probeSent = false
    this.pendingSnapshot = 0
    this.state = state
    this.inflights.reset()
  }

  becomeProbe (): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot
      this.resetState(ProgressState.Probe)
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.resetState(ProgressState.Probe)
      this.next = this.match + 1
    }
  }

  /** The member lost its log after `lastIndex`: probe it from there (commit never goes back). */
  lostLog (lastIndex: number): void {
    this.match = lastIndex
    this.resetState(ProgressState.Probe)
    this.next = lastIndex + 1
  }

  becomeReplicate (): void {
    this.resetState(ProgressState.Replicate)
    this.next = this.match + 1
  }

  becomeSnapshot (snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot)
    this.pendingSnapshot = snapshotIndex
  }

  /** An append up to n was acknowledged; returns whether match moved. */
  maybeUpdate (n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  /**
   * An append at `rejected` was refused; the follower hinted that it may match at
   * `matchHint`. Returns false for a stale rejection.
   */
  maybeDecrTo (rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1)
    this.probeSent = false
    return true
  }

  isPaused (): boolean {
    switch (this.state) {
      case ProgressState.Probe: return this.probeSent
      case ProgressState.Replicate: return this.inflights.full()
      case ProgressState.Snapshot: return true
    }
  }
}

export enum VoteResult { Pending, Won, Lost }

/** Membership (single-server changes: one majority configuration) and per-node progress. */
export class ProgressTracker {
  readonly voters = new Set<NodeId>()
  readonly learners = new Set<NodeId>()
  readonly progress = new Map<NodeId, Progress>()
  readonly votes = new Map<NodeId, boolean>()

  constructor (readonly maxInflight: number) {}

  quorum (): number {
    return Math.floor(this.voters.size / 2) + 1
  }

  isSingleton (): boolean {
    return this.voters.size === 1 && this.learners.size === 0
  }

  /** The largest index replicated on a quorum of voters. */
  committed (): number {
    if (this.voters.size === 0) return Number.MAX_SAFE_INTEGER
    // insertion sort, descending, into a reused buffer: groups are small and this runs per ack
    const m = this.matchBuffer
    let n = 0
    for (const id of this.voters) {
      const v = this.progress.get(id)?.match ?? 0
      let i = n++
      while (i > 0 && m[i - 1] < v) {
        m[i] = m[i - 1]
        i--
      }
      m[i] = v
    }
    return m[this.quorum() - 1]
  }

  private readonly matchBuffer: number[] = []

  resetVotes (): void {
    this.votes.clear()
  }

  recordVote (id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted)
  }

  /** Counts only voters of this configuration: anyone else's vote is ignored. */
  tallyVotes (): { granted: number, rejected: number, result: VoteResult } {
    let granted = 0
    let rejected = 0
    for (const id of this.voters) {
      const v = this.votes.get(id)
      if (v === true) granted++
      else if (v === false) rejected++
    }
    const q = this.quorum()
    const result = granted >= q ? VoteResult.Won : (this.voters.size - rejected < q ? VoteResult.Lost : VoteResult.Pending)
    return { granted, rejected, result }
  }

  /** Whether the acknowledging set contains a quorum of voters. */
  hasQuorum (acks: Set<NodeId>): boolean {
    let n = 0
    for (const id of this.voters) if (acks.has(id)) n++
    return n >= this.quorum()
  }

  /** Check-quorum: were a quorum of voters active since the last check? */
  quorumActive (self: NodeId): boolean {
    let n = 0
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive === true) n++
    }
    return n >= this.quorum()
  }

  isMember (id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id)
  }
}
