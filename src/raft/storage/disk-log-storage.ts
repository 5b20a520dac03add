// A raft group's log and hard state on disk: an append-only write-ahead log in numbered
// segments (wal-<seq>.log) plus the latest snapshot in its own atomically replaced file.
// Mutations (append, setHardState, setConfState, compact) update the in-memory view at
// once and queue WAL records; `sync()` writes the queue and fdatasyncs it once, so a
// whole Ready costs one fsync. Per the Ready contract the host calls `sync()` before it
// sends the Ready's messages (votes and append acknowledgements).
//
// Recovery replays the segments in order; a later entry record at or below the last
// index truncates the log there first (a follower dropping a conflicting suffix). A
// damaged record at the very end of the last segment is a torn write and is truncated when
// it looks like one (cut short, or with unwritten zero sectors); a complete last record
// that fails its checksum is a bit flip in synced data, and damage followed by valid
// records, or in an older segment, is too: those are refused with an error.
import { join } from 'node:path'
import * as pb from '../../wire/proto/raft.js'
import { CompactedError, ConfChangeType, EntryType } from '../types.js'
import { decodeConfChange } from '../core/conf-change-codec.js'
import type { ConfState, Entry, HardState, LogStorage, Snapshot } from '../types.js'
import { limitSize } from '../core/entry-size.js'
import { RecordType, encodeRecord, encodeRecords, isTornTail, scanRecords, validRecordFollows } from './wal-record.js'
import type { PendingRecord, WalRecord } from './wal-record.js'
import { nodeWalFs } from './wal-fs.js'
import { mkdirDurable } from '../../util/atomic-file.js'
import type { WalFileHandle, WalFs } from './wal-fs.js'
import {
  confFromProto, confToProto, emptySnapshot, entryFromProto, entryToProto,
  hardStateFromProto, hardStateToProto, snapshotFromProto, snapshotToProto
} from './proto-convert.js'

const SEGMENT_NAME = /^wal-([0-9a-f]{16})\.log$/
const SNAPSHOT_FILE = 'snapshot'

export class WalCorruptError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'WalCorruptError'
  }
}

export interface DiskLogStorageInit {
  /** start a new segment once the current one reaches this size (default 64 MiB) */
  segmentBytes?: number
  /** the file system (default node:fs; the simulation passes a simulated disk) */
  fs?: WalFs
}

export interface DiskLogStorageStats {
  /** fdatasync calls made by sync() */
  syncs: number
  bytesWritten: number
  /** bytes of a torn tail cut off during recovery */
  tornBytesTruncated: number
}

interface Segment {
  seq: number
  path: string
  /** highest entry index written in this segment (0 if none) */
  maxIndex: number
}

function segmentName (seq: number): string {
  return `wal-${seq.toString(16).padStart(16, '0')}.log`
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

export class DiskLogStorage implements LogStorage {
  readonly dir: string
  readonly stats: DiskLogStorageStats = { syncs: 0, bytesWritten: 0, tornBytesTruncated: 0 }
  private readonly segmentBytes: number
  private readonly fs: WalFs
  // the log: entries after (offsetIndex, offsetTerm), the last compacted or snapshot point
  private offsetIndex = 0
  private offsetTerm = 0
  private ents: Entry[] = []
  private hardState: HardState = { term: 0, vote: '', commit: 0 }
  private conf: ConfState = { voters: [], learners: [] }
  private snap: Snapshot = emptySnapshot()
  // records queued for the next sync
  private pending: PendingRecord[] = []
  private pendingMaxIndex = 0
  private segments: Segment[] = []
  private handle?: WalFileHandle
  private segmentSize = 0
  private durableOffsetIndex = 0
  private syncChain: Promise<void> = Promise.resolve()
  private failure?: Error
  private closed = false

  private constructor (dir: string, init: DiskLogStorageInit) {
    this.dir = dir
    this.segmentBytes = init.segmentBytes ?? 64 * 1024 * 1024
    this.fs = init.fs ?? nodeWalFs
  }

  /** Opens (creating if needed) the group's storage in `dir` and recovers its state. */
  static async open (dir: string, init: DiskLogStorageInit = {}): Promise<DiskLogStorage> {
    await mkdirDurable(dir, init.fs ?? nodeWalFs)
    const storage = new DiskLogStorage(dir, init)
    await storage.recover()
    return storage
  }

  /**
   * Best effort, for a damaged log: the members it last names in the records readable
   * before the damage (snapshot file, then the segments in order). Never throws.
   */
  static async salvageMembers (dir: string, fs: WalFs = nodeWalFs): Promise<string[]> {
    const members = new Set<string>()
    const setConf = (conf: ConfState): void => {
      if (conf.voters.length + conf.learners.length === 0) return
      members.clear()
      for (const m of [...conf.voters, ...conf.learners]) members.add(m)
    }
    const take = (record: WalRecord): void => {
      if (record.type === RecordType.State) setConf(confFromProto(pb.WalState.decode(record.payload).conf))
      else if (record.type === RecordType.ConfState) setConf(confFromProto(pb.ConfState.decode(record.payload)))
      else if (record.type === RecordType.Snapshot) setConf(snapshotFromProto(pb.Snapshot.decode(record.payload)).metadata.conf)
      else if (record.type === RecordType.Entry) {
        // membership changes in the log, applied or not (a new member's log starts with them)
        const e = entryFromProto(pb.Entry.decode(record.payload))
        if (e.type !== EntryType.ConfChange) return
        const cc = decodeConfChange(e.data)
        if (cc.type === ConfChangeType.RemoveNode) members.delete(cc.node)
        else members.add(cc.node)
      }
    }
    try {
      const names = (await fs.readdir(dir)).filter(n => SEGMENT_NAME.test(n)).sort()
      for (const name of [SNAPSHOT_FILE, ...names]) {
        const scan = scanRecords(await fs.readFile(join(dir, name)).catch(() => new Uint8Array(0)))
        for (const record of scan.records) take(record)
        if (scan.damage != null && name !== SNAPSHOT_FILE) break
      }
    } catch {
      // whatever was read before the damage stands
    }
    return [...members]
  }

  // ---- LogStorage (read-only view used by the core) ----

  initialState (): { hardState: HardState, confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: { voters: [...this.conf.voters], learners: [...this.conf.learners] } }
  }

  entries (lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo <= this.offsetIndex) throw new CompactedError(lo)
    if (hi > this.lastIndex() + 1) throw new RangeError(`raft log: entries [${lo}, ${hi}) past the last index ${this.lastIndex()}`)
    return limitSize(this.ents.slice(lo - this.offsetIndex - 1, hi - this.offsetIndex - 1), maxBytes)
  }

  term (index: number): number {
    if (index < this.offsetIndex) throw new CompactedError(index)
    if (index === this.offsetIndex) return this.offsetTerm
    if (index > this.lastIndex()) throw new RangeError(`raft log: index ${index} is past the last index ${this.lastIndex()}`)
    return this.ents[index - this.offsetIndex - 1].term
  }

  firstIndex (): number {
    return this.offsetIndex + 1
  }

  lastIndex (): number {
    return this.offsetIndex + this.ents.length
  }

  snapshot (): Snapshot {
    return this.snap
  }

  // ---- mutations: in memory now, on disk after sync() ----

  /** Appends entries, first dropping any conflicting suffix at or after the first one. */
  append (entries: Entry[]): void {
    this.checkUsable()
    if (entries.length === 0) return
    const first = entries[0].index
    for (let i = 1; i < entries.length; i++) {
      if (entries[i].index !== first + i) throw new Error(`raft log: appended entries are not contiguous at index ${entries[i].index}`)
    }
    if (first > this.lastIndex() + 1) throw new Error(`raft log: append at index ${first} leaves a gap after last index ${this.lastIndex()}`)
    for (const e of entries) {
      if (e.index <= this.offsetIndex) continue
      this.putEntry(e)
      this.queue(RecordType.Entry, pb.Entry.encode(entryToProto(e)))
      if (e.index > this.pendingMaxIndex) this.pendingMaxIndex = e.index
    }
  }

  setHardState (hs: HardState): void {
    this.checkUsable()
    if (sameHardState(hs, this.hardState)) return
    this.hardState = { ...hs }
    this.queue(RecordType.HardState, pb.HardState.encode(hardStateToProto(hs)))
  }

  /** Records the membership (bootstrap, or after applying a conf change). */
  setConfState (conf: ConfState): void {
    this.checkUsable()
    this.conf = { voters: [...conf.voters], learners: [...conf.learners] }
    this.queue(RecordType.ConfState, pb.ConfState.encode(confToProto(conf)))
  }

  /** Discards entries up to and including `index` (keeping its term); no-op if already compacted. */
  compact (index: number): void {
    this.checkUsable()
    if (index <= this.offsetIndex) return
    if (index > this.lastIndex()) throw new Error(`raft log: cannot compact to ${index}, beyond last index ${this.lastIndex()}`)
    const term = this.term(index)
    this.compactTo(index, term)
    this.queue(RecordType.Compaction, pb.WalCompaction.encode({ index, term, reset: false }))
  }

  /** Replaces the whole log by a newer snapshot received from the leader; the file is written (fsynced) before this resolves. */
  async applySnapshot (snap: Snapshot): Promise<void> {
    this.checkUsable()
    if (snap.metadata.index <= this.snap.metadata.index) return
    await this.writeSnapshotFile(snap)
    this.snap = snap
    this.resetTo(snap.metadata.index, snap.metadata.term)
    this.conf = { voters: [...snap.metadata.conf.voters], learners: [...snap.metadata.conf.learners] }
    this.queue(RecordType.Compaction, pb.WalCompaction.encode({ index: snap.metadata.index, term: snap.metadata.term, reset: true }))
    this.queue(RecordType.ConfState, pb.ConfState.encode(confToProto(this.conf)))
  }

  /** Saves the state machine's snapshot at applied `index` (then `compact` may drop the log before it). */
  async createSnapshot (index: number, conf: ConfState, data: Uint8Array): Promise<Snapshot> {
    this.checkUsable()
    if (index <= this.snap.metadata.index) return this.snap
    if (index > this.lastIndex()) throw new RangeError(`raft log: cannot snapshot at ${index}, beyond last index ${this.lastIndex()}`)
    const snap: Snapshot = { metadata: { index, term: this.term(index), conf: { voters: [...conf.voters], learners: [...conf.learners] } }, data }
    await this.writeSnapshotFile(snap)
    this.snap = snap
    return snap
  }

  /** Writes and fdatasyncs everything queued so far: one fsync however many records. */
  async sync (): Promise<void> {
    this.checkUsable()
    const done = this.syncChain.then(async () => { await this.flush() })
    this.syncChain = done.catch(() => {})
    await done
  }

  async close (): Promise<void> {
    if (this.closed) return
    await this.syncChain
    this.closed = true
    await this.handle?.close()
  }

  // ---- internals ----

  private checkUsable (): void {
    if (this.closed) throw new Error(`raft log ${this.dir}: storage is closed`)
    if (this.failure != null) throw new Error(`raft log ${this.dir}: storage failed earlier: ${this.failure.message}`)
  }

  private queue (type: RecordType, payload: Uint8Array): void {
    this.pending.push({ type, payload })
  }

  private putEntry (e: Entry): void {
    this.ents.length = e.index - this.offsetIndex - 1
    this.ents.push(e)
  }

  private compactTo (index: number, term: number): void {
    // replay: entries that follow deleted segments start at an offset of unknown term (NaN);
    // a later record compacting to exactly that offset names it (a segment head written
    // after recovery moved the offset to the snapshot, whose own record is in no segment)
    if (index === this.offsetIndex && Number.isNaN(this.offsetTerm)) this.offsetTerm = term
    if (index <= this.offsetIndex) return
    if (index <= this.lastIndex() && this.term(index) === term) {
      this.ents = this.ents.slice(index - this.offsetIndex)
      this.offsetIndex = index
      this.offsetTerm = term
    } else {
      this.resetTo(index, term)
    }
  }

  private resetTo (index: number, term: number): void {
    this.ents = []
    this.offsetIndex = index
    this.offsetTerm = term
  }

  private stateRecord (): Uint8Array {
    return encodeRecord(RecordType.State, pb.WalState.encode({
      hardState: hardStateToProto(this.hardState),
      offsetIndex: this.offsetIndex,
      offsetTerm: this.offsetTerm,
      conf: confToProto(this.conf)
    }))
  }

  private async flush (): Promise<void> {
    if (this.pending.length === 0 || this.handle == null) return
    // take the queue and the state it leads to in one synchronous step
    const records = this.pending
    const maxIndex = this.pendingMaxIndex
    this.pending = []
    this.pendingMaxIndex = 0
    const head = this.stateRecord()
    const offsetAfter = this.offsetIndex
    try {
      const current = this.segments[this.segments.length - 1]
      await this.writeAll(this.handle, encodeRecords(records))
      await this.handle.datasync()
      this.stats.syncs++
      if (maxIndex > current.maxIndex) current.maxIndex = maxIndex
      this.durableOffsetIndex = offsetAfter
      if (this.segmentSize >= this.segmentBytes) await this.rollOver(head)
    } catch (err) {
      this.failure = err as Error
      throw new Error(`raft log ${this.dir}: sync failed: ${(err as Error).message}`)
    }
  }

  private async writeAll (handle: WalFileHandle, buf: Uint8Array): Promise<void> {
    let done = 0
    while (done < buf.length) {
      const { bytesWritten } = await handle.write(buf, done, buf.length - done, this.segmentSize)
      done += bytesWritten
      this.segmentSize += bytesWritten
      this.stats.bytesWritten += bytesWritten
    }
  }

  /** Starts a new segment headed by the current state, then deletes old segments holding only compacted entries. */
  private async rollOver (head: Uint8Array): Promise<void> {
    const seq = this.segments[this.segments.length - 1].seq + 1
    const path = join(this.dir, segmentName(seq))
    const handle = await this.fs.open(path, 'wx')
    const old = this.handle
    this.handle = handle
    this.segmentSize = 0
    this.segments.push({ seq, path, maxIndex: 0 })
    await this.writeAll(handle, head)
    await handle.sync()
    await this.fs.fsyncDir(this.dir)
    await old?.close()
    // only a prefix may go, so that replay never sees a later segment without the ones before it
    let removed = false
    while (this.segments.length > 1 && this.segments[0].maxIndex <= this.durableOffsetIndex) {
      await this.fs.unlink(this.segments[0].path)
      this.segments.shift()
      removed = true
    }
    if (removed) await this.fs.fsyncDir(this.dir)
  }

  private async writeSnapshotFile (snap: Snapshot): Promise<void> {
    await this.fs.writeFileAtomic(join(this.dir, SNAPSHOT_FILE), encodeRecord(RecordType.Snapshot, pb.Snapshot.encode(snapshotToProto(snap))))
  }

  private async readSnapshotFile (): Promise<void> {
    const path = join(this.dir, SNAPSHOT_FILE)
    let buf: Uint8Array
    try {
      buf = await this.fs.readFile(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const scan = scanRecords(buf)
    if (scan.damage != null || scan.records.length !== 1 || scan.records[0].type !== RecordType.Snapshot) throw new WalCorruptError(`raft snapshot ${path} is corrupt: ${scan.damage ?? 'expected exactly one record'}`)
    try {
      this.snap = snapshotFromProto(pb.Snapshot.decode(scan.records[0].payload))
    } catch (err) {
      throw new WalCorruptError(`raft snapshot ${path} is corrupt: ${(err as Error).message}`)
    }
  }

  private async recover (): Promise<void> {
    await this.readSnapshotFile()
    const names = (await this.fs.readdir(this.dir)).filter(n => SEGMENT_NAME.test(n)).sort()
    let tornAt: number | undefined
    for (let i = 0; i < names.length; i++) {
      const path = join(this.dir, names[i])
      const seq = parseInt(SEGMENT_NAME.exec(names[i])![1], 16)
      if (this.segments.length > 0 && seq !== this.segments[this.segments.length - 1].seq + 1) {
        throw new WalCorruptError(`raft log ${this.dir}: segment ${names[i]} does not follow segment ${segmentName(this.segments[this.segments.length - 1].seq)}`)
      }
      const buf = await this.fs.readFile(path)
      const scan = scanRecords(buf)
      const segment: Segment = { seq, path, maxIndex: 0 }
      if (scan.damage != null) {
        const where = `${path}: ${scan.damage} at offset ${scan.validBytes}`
        if (i < names.length - 1) throw new WalCorruptError(`raft log damaged in a sealed segment: ${where}`)
        if (validRecordFollows(buf, scan.validBytes)) throw new WalCorruptError(`raft log damaged in the middle (valid records follow): ${where}`)
        if (!isTornTail(buf, scan.validBytes)) throw new WalCorruptError(`raft log damaged in its last record, which is complete (a bit flip in synced data, not a torn write): ${where}`)
        tornAt = scan.validBytes
        this.stats.tornBytesTruncated = buf.length - scan.validBytes
      }
      for (const record of scan.records) this.replay(record, segment)
      this.segments.push(segment)
      this.segmentSize = scan.validBytes
    }
    // a snapshot whose WAL record did not make it to disk still stands: it was fsynced first
    // (and it names the term where entries after deleted segments start, when it is there);
    // its index is committed, even when a crash tore off the hard state record written after it
    const s = this.snap.metadata
    const adopted = s.index > this.offsetIndex
    if (adopted) this.conf = { voters: [...s.conf.voters], learners: [...s.conf.learners] }
    if (s.index >= this.offsetIndex) this.compactTo(s.index, s.term)
    if (this.hardState.commit < s.index) this.hardState = { ...this.hardState, commit: s.index }
    if (Number.isNaN(this.offsetTerm)) throw new WalCorruptError(`raft log ${this.dir}: entries start after a gap (a segment is missing)`)
    this.durableOffsetIndex = this.offsetIndex
    await this.openForAppend(tornAt)
    if (adopted) {
      // the log records the adoption before anything is appended after the snapshot: else a
      // later replay puts those entries on the log of before it, and the adoption there
      // (a conflicting term at the snapshot: reset) drops them
      this.queue(RecordType.Compaction, pb.WalCompaction.encode({ index: s.index, term: s.term, reset: false }))
      this.queue(RecordType.ConfState, pb.ConfState.encode(confToProto(this.conf)))
      this.queue(RecordType.HardState, pb.HardState.encode(hardStateToProto(this.hardState)))
      await this.flush()
    }
  }

  private replay (record: WalRecord, segment: Segment): void {
    try {
      switch (record.type) {
        case RecordType.State: {
          const st = pb.WalState.decode(record.payload)
          this.hardState = hardStateFromProto(st.hardState)
          this.conf = confFromProto(st.conf)
          this.compactTo(st.offsetIndex, st.offsetTerm)
          break
        }
        case RecordType.Entry: {
          const e = entryFromProto(pb.Entry.decode(record.payload))
          if (e.index <= this.offsetIndex) break
          // entries after a deleted (fully compacted) segment: anchored by a later compaction record
          if (e.index > this.lastIndex() + 1) this.resetTo(e.index - 1, NaN)
          this.putEntry(e)
          if (e.index > segment.maxIndex) segment.maxIndex = e.index
          break
        }
        case RecordType.HardState:
          this.hardState = hardStateFromProto(pb.HardState.decode(record.payload))
          break
        case RecordType.Compaction: {
          const c = pb.WalCompaction.decode(record.payload)
          if (c.reset) {
            this.resetTo(c.index, c.term)
            // the installed snapshot's membership, also when a crash tore off the ConfState record after this one
            const snap = this.snap.metadata
            if (snap.index === c.index) this.conf = { voters: [...snap.conf.voters], learners: [...snap.conf.learners] }
          } else {
            this.compactTo(c.index, c.term)
          }
          break
        }
        case RecordType.ConfState:
          this.conf = confFromProto(pb.ConfState.decode(record.payload))
          break
        default:
          throw new Error(`unknown record type ${record.type as number}`)
      }
    } catch (err) {
      throw new WalCorruptError(`raft log ${segment.path}: bad record at offset ${record.offset}: ${(err as Error).message}`)
    }
  }

  private async openForAppend (tornAt: number | undefined): Promise<void> {
    if (this.segments.length === 0) {
      const path = join(this.dir, segmentName(0))
      this.handle = await this.fs.open(path, 'wx')
      this.segments.push({ seq: 0, path, maxIndex: 0 })
      this.segmentSize = 0
      await this.writeAll(this.handle, this.stateRecord())
      await this.handle.sync()
      await this.fs.fsyncDir(this.dir)
      return
    }
    const last = this.segments[this.segments.length - 1]
    this.handle = await this.fs.open(last.path, 'r+')
    if (tornAt !== undefined) {
      await this.handle.truncate(tornAt)
      await this.handle.sync()
    }
  }
}
