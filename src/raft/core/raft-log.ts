// The core's view of the log (etcd's raftLog): the persisted part in LogStorage plus the
// unstable tail (entries and possibly a snapshot) that has not been handed out for
// persistence and acknowledged by advance() yet.
import { CompactedError } from '../types.js'
import type { Entry, LogStorage, Snapshot } from '../types.js'
import { entrySize } from './entry-size.js'

class Unstable {
  snapshot: Snapshot | undefined
  entries: Entry[] = []
  /** index of entries[0] */
  offset: number

  constructor (offset: number) {
    this.offset = offset
  }

  maybeFirstIndex (): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1
  }

  maybeLastIndex (): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    return this.snapshot?.metadata.index
  }

  maybeTerm (i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term
      return undefined
    }
    const last = this.maybeLastIndex()
    if (last === undefined || i > last) return undefined
    return this.entries[i - this.offset].term
  }

  stableTo (i: number, t: number): void {
    const gt = this.maybeTerm(i)
    if (gt === undefined) return
    // only if the entry still is the one that was persisted (not replaced meanwhile)
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset)
      this.offset = i + 1
    }
  }

  stableSnapTo (i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined
  }

  restore (s: Snapshot): void {
    this.offset = s.metadata.index + 1
    this.entries = []
    this.snapshot = s
  }

  truncateAndAppend (ents: Entry[]): void {
    const after = ents[0].index
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e)
    } else if (after <= this.offset) {
      // replaces the whole unstable tail
      this.offset = after
      this.entries = ents.slice()
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents)
    }
  }

}

export class RaftLog {
  readonly storage: LogStorage
  readonly unstable: Unstable
  committed: number
  applied: number
  readonly maxCommittedBytes: number

  constructor (storage: LogStorage, maxCommittedBytes: number) {
    this.storage = storage
    this.maxCommittedBytes = maxCommittedBytes
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    this.committed = first - 1
    this.applied = first - 1
  }

  firstIndex (): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex()
  }

  lastIndex (): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex()
  }

  lastTerm (): number {
    return this.term(this.lastIndex())
  }

  /** Term of entry i; 0 past the last index; throws CompactedError below the first index - 1. */
  term (i: number): number {
    const dummy = this.firstIndex() - 1
    if (i < dummy) throw new CompactedError(i)
    if (i > this.lastIndex()) return 0
    const t = this.unstable.maybeTerm(i)
    if (t !== undefined) return t
    return this.storage.term(i)
  }

  /** term(i), or 0 when it is compacted. */
  termOrZero (i: number): number {
    try {
      return this.term(i)
    } catch (err) {
      if (err instanceof CompactedError) return 0
      throw err
    }
  }

  matchTerm (i: number, t: number): boolean {
    try {
      return this.term(i) === t
    } catch (err) {
      if (err instanceof CompactedError) return false
      throw err
    }
  }

  /**
   * Follower side of AppendEntries: if the entry at `index` has `logTerm`, appends `ents`
   * (truncating a conflicting suffix), advances commit, and returns the last new index;
   * otherwise returns -1.
   */
  maybeAppend (index: number, logTerm: number, committed: number, ents: Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    if (ci !== 0) {
      if (ci <= this.committed) throw new Error(`raft: entry ${ci} conflicts with committed entry (committed ${this.committed})`)
      this.append(ents.slice(ci - (index + 1)))
    }
    this.commitTo(Math.min(committed, lastNew))
    return lastNew
  }

  append (ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0].index - 1
    if (after < this.committed) throw new Error(`raft: append after ${after} is below committed ${this.committed}`)
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /** Index of the first entry of `ents` that is new or conflicts with the log; 0 if none. */
  findConflict (ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index
    }
    return 0
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term` (with that term), used for fast
   * back-off: a whole term of conflicting entries is skipped in one round trip. An index
   * whose term is unknown (compacted) is returned with term 0.
   */
  findConflictByTerm (index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let ourTerm: number
      try {
        ourTerm = this.term(index)
      } catch (err) {
        if (err instanceof CompactedError) return [index, 0]
        throw err
      }
      if (ourTerm <= term) return [index, ourTerm]
    }
    return [0, 0]
  }

  unstableEntries (): Entry[] {
    return this.unstable.entries
  }

  /** Committed entries not yet applied, at most maxCommittedBytes. */
  nextCommittedEntries (): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex())
    if (this.committed + 1 <= lo) return []
    return this.slice(lo, this.committed + 1, this.maxCommittedBytes)
  }

  hasNextCommittedEntries (): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex())
  }

  snapshot (): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot()
  }

  hasPendingSnapshot (): boolean {
    return this.unstable.snapshot !== undefined
  }

  commitTo (c: number): void {
    if (c > this.committed) {
      if (c > this.lastIndex()) throw new Error(`raft: commit ${c} is past the last index ${this.lastIndex()}`)
      this.committed = c
    }
  }

  appliedTo (i: number): void {
    if (i === 0) return
    if (i > this.committed || i < this.applied) throw new Error(`raft: applied ${i} outside [${this.applied}, ${this.committed}]`)
    this.applied = i
  }

  stableTo (i: number, t: number): void {
    this.unstable.stableTo(i, t)
  }

  stableSnapTo (i: number): void {
    this.unstable.stableSnapTo(i)
  }

  /** Raft §5.4.1: is a candidate's log (lastTerm, lastIndex) at least as up to date as ours? */
  isUpToDate (lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  /** Entries from lo to the end, at most maxBytes (throws CompactedError). */
  entriesFrom (lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex()
    if (lo > last) return []
    return this.slice(lo, last + 1, maxBytes)
  }

  /** Commits up to maxIndex if that entry is of `term` (only current-term entries are committed by counting, §5.4.2). */
  maybeCommit (maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex)
      return true
    }
    return false
  }

  restore (s: Snapshot): void {
    this.committed = s.metadata.index
    this.unstable.restore(s)
  }

  /** Entries in [lo, hi), at most maxBytes (at least one). */
  slice (lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo >= hi) return []
    const first = this.firstIndex()
    if (lo < first) throw new CompactedError(lo)
    if (hi > this.lastIndex() + 1) throw new RangeError(`raft log: slice [${lo}, ${hi}) out of bound`)
    const uoff = this.unstable.offset
    let ents: Entry[] = []
    if (lo < uoff) {
      ents = this.storage.entries(lo, Math.min(hi, uoff), maxBytes)
      // storage returned fewer entries than asked: the size limit was reached
      if (ents.length < Math.min(hi, uoff) - lo || hi <= uoff) return ents
      ents = ents.slice() // never grow an array the storage may own
    }
    // the unstable part, copied only as far as the size limit allows
    const u = this.unstable.entries
    let size = 0
    for (const e of ents) size += entrySize(e)
    for (let i = Math.max(lo, uoff) - uoff; i < hi - uoff; i++) {
      size += entrySize(u[i])
      if (maxBytes !== undefined && size > maxBytes && ents.length > 0) break
      ents.push(u[i])
    }
    return ents
  }
}
