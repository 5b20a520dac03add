// An in-memory LogStorage (etcd's MemoryStorage): the persisted log of the simulation and
// of unit tests. ents[0] is a dummy entry at the snapshot's index and term, so term lookups
// at the compaction point work and every lookup is O(1).
import { CompactedError, EntryType } from '../types.js'
import type { ConfState, Entry, HardState, LogStorage, Snapshot } from '../types.js'
import { limitSize } from './entry-size.js'

export class MemoryLogStorage implements LogStorage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 }
  private snap: Snapshot = { metadata: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: new Uint8Array(0) }
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]

  /** `conf`: the membership of a group created without bootstrap entries (tests). */
  constructor (conf?: ConfState) {
    if (conf !== undefined) this.snap.metadata.conf = copyConf(conf)
  }

  initialState (): { hardState: HardState, confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: copyConf(this.snap.metadata.conf) }
  }

  setHardState (hs: HardState): void {
    this.hardState = { ...hs }
  }

  firstIndex (): number {
    return this.ents[0].index + 1
  }

  lastIndex (): number {
    return this.ents[0].index + this.ents.length - 1
  }

  term (index: number): number {
    const offset = this.ents[0].index
    if (index < offset) throw new CompactedError(index)
    const i = index - offset
    if (i >= this.ents.length) throw new RangeError(`raft log: index ${index} is past the last index ${this.lastIndex()}`)
    return this.ents[i].term
  }

  entries (lo: number, hi: number, maxBytes?: number): Entry[] {
    const offset = this.ents[0].index
    if (lo <= offset) throw new CompactedError(lo)
    if (hi > this.lastIndex() + 1) throw new RangeError(`raft log: entries [${lo}, ${hi}) past the last index ${this.lastIndex()}`)
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes)
  }

  snapshot (): Snapshot {
    return this.snap
  }

  /** Replaces the whole log by a snapshot (a follower installing its leader's snapshot). */
  applySnapshot (snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return
    this.snap = snap
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: new Uint8Array(0) }]
  }

  /** Records a snapshot of the state machine at `index` (≤ lastIndex); call compact() to drop the log before it. */
  createSnapshot (index: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) return this.snap
    if (index > this.lastIndex()) throw new RangeError(`raft snapshot at ${index} is past the last index ${this.lastIndex()}`)
    this.snap = { metadata: { index, term: this.term(index), conf: copyConf(conf) }, data }
    return this.snap
  }

  /** Drops entries before `index` (which becomes the dummy entry). */
  compact (index: number): void {
    const offset = this.ents[0].index
    if (index <= offset) return
    if (index > this.lastIndex()) throw new RangeError(`raft compact at ${index} is past the last index ${this.lastIndex()}`)
    const dummy = this.ents[index - offset]
    const rest = this.ents.slice(index - offset + 1)
    rest.unshift({ term: dummy.term, index: dummy.index, type: EntryType.Normal, data: new Uint8Array(0) })
    this.ents = rest
  }

  /** Appends entries, truncating any conflicting suffix (entries must be contiguous). */
  append (entries: Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    const lastNew = entries[entries.length - 1].index
    if (lastNew < first) return
    // drop the part that is already compacted
    if (entries[0].index < first) entries = entries.slice(first - entries[0].index)
    const offset = entries[0].index - this.ents[0].index
    if (offset > this.ents.length) throw new RangeError(`raft append: gap before index ${entries[0].index} (last index ${this.lastIndex()})`)
    this.ents.length = offset
    for (const e of entries) this.ents.push(e)
  }
}

function copyConf (c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] }
}
