import assert from 'node:assert/strict'
import { mkdtemp, rm, readdir, appendFile, readFile, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DiskLogStorage, WalCorruptError } from '../../src/raft/storage/disk-log-storage.js'
import { RECORD_HEADER_BYTES, RecordType, SECTOR_BYTES, encodeRecord, scanRecords } from '../../src/raft/storage/wal-record.js'
import { CompactedError, EntryType } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'

function ent (index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) }
}

function texts (entries: Entry[]): string[] {
  return entries.map(e => `${e.index}:${e.term}:${new TextDecoder().decode(e.data)}`)
}

async function segments (dir: string): Promise<string[]> {
  return (await readdir(dir)).filter(n => n.startsWith('wal-')).sort()
}

describe('raft disk log storage', () => {
  let dir: string
  const open: DiskLogStorage[] = []

  async function openStorage (segmentBytes?: number): Promise<DiskLogStorage> {
    const s = await DiskLogStorage.open(dir, { segmentBytes })
    open.push(s)
    return s
  }

  async function reopen (s: DiskLogStorage, segmentBytes?: number): Promise<DiskLogStorage> {
    await s.close()
    return openStorage(segmentBytes)
  }

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-raft-storage-')) })
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('starts empty', async () => {
    const s = await openStorage()
    assert.deepEqual(s.initialState().hardState, { term: 0, vote: '', commit: 0 })
    assert.equal(s.firstIndex(), 1)
    assert.equal(s.lastIndex(), 0)
    assert.equal(s.term(0), 0)
    assert.throws(() => s.term(1), RangeError)
  })

  it('recovers log, hard state and membership after a restart', async () => {
    let s = await openStorage()
    s.setConfState({ voters: ['a', 'b', 'c'], learners: [] })
    s.append([ent(1, 1), ent(2, 1), ent(3, 2)])
    s.setHardState({ term: 2, vote: 'b', commit: 2 })
    await s.sync()
    s = await reopen(s)
    assert.deepEqual(s.initialState(), { hardState: { term: 2, vote: 'b', commit: 2 }, confState: { voters: ['a', 'b', 'c'], learners: [] } })
    assert.deepEqual(texts(s.entries(1, 4)), ['1:1:e1', '2:1:e2', '3:2:e3'])
    assert.equal(s.term(3), 2)
    // appends continue after recovery
    s.append([ent(4, 2)])
    await s.sync()
    s = await reopen(s)
    assert.equal(s.lastIndex(), 4)
  })

  it('loses nothing that was synced and keeps unsynced writes out of the files', async () => {
    const s = await openStorage()
    s.append([ent(1, 1)])
    await s.sync()
    s.append([ent(2, 1)])
    // a second process reading the directory sees only the synced entry
    const other = await DiskLogStorage.open(dir)
    open.push(other)
    assert.equal(other.lastIndex(), 1)
  })

  it('uses one fsync for a whole batch of entries', async () => {
    const s = await openStorage()
    const before = s.stats.syncs
    s.append(Array.from({ length: 1000 }, (_, i) => ent(i + 1, 1)))
    s.setHardState({ term: 1, vote: 'a', commit: 0 })
    await s.sync()
    assert.equal(s.stats.syncs - before, 1)
    await s.sync() // nothing queued: no fsync
    assert.equal(s.stats.syncs - before, 1)
  })

  it('truncates a conflicting suffix on append, durably', async () => {
    let s = await openStorage()
    s.append([ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1), ent(5, 1)])
    await s.sync()
    s.append([ent(3, 2, 'x3'), ent(4, 2, 'x4')])
    assert.deepEqual(texts(s.entries(1, 5)), ['1:1:e1', '2:1:e2', '3:2:x3', '4:2:x4'])
    await s.sync()
    s = await reopen(s)
    assert.equal(s.lastIndex(), 4)
    assert.deepEqual(texts(s.entries(1, 5)), ['1:1:e1', '2:1:e2', '3:2:x3', '4:2:x4'])
  })

  it('refuses an append that leaves a gap or is not contiguous', async () => {
    const s = await openStorage()
    s.append([ent(1, 1)])
    assert.throws(() => s.append([ent(3, 1)]), /gap/)
    assert.throws(() => s.append([ent(2, 1), ent(4, 1)]), /not contiguous/)
    assert.equal(s.lastIndex(), 1)
  })

  it('limits entries() by maxBytes but returns at least one', async () => {
    const s = await openStorage()
    s.append([ent(1, 1, 'x'.repeat(100)), ent(2, 1, 'y'.repeat(100)), ent(3, 1)])
    assert.equal(s.entries(1, 4, 1).length, 1)
    assert.equal(s.entries(1, 4, 240).length, 2)
    assert.equal(s.entries(1, 4).length, 3)
  })

  it('truncates a torn tail (partial record) and keeps working', async () => {
    let s = await openStorage()
    s.append([ent(1, 1), ent(2, 1)])
    await s.sync()
    const [seg] = await segments(dir)
    const sizeBefore = (await stat(join(dir, seg))).size
    // a record cut off mid-write: its whole header, then only 10 of its 100 payload bytes
    const record = encodeRecord(RecordType.Entry, new Uint8Array(100).fill(7))
    await appendFile(join(dir, seg), record.subarray(0, RECORD_HEADER_BYTES + 10))
    s = await reopen(s)
    assert.equal(s.stats.tornBytesTruncated, RECORD_HEADER_BYTES + 10)
    assert.equal(s.lastIndex(), 2)
    assert.equal((await stat(join(dir, seg))).size, sizeBefore)
    s.append([ent(3, 1)])
    await s.sync()
    s = await reopen(s)
    assert.deepEqual(texts(s.entries(1, 4)), ['1:1:e1', '2:1:e2', '3:1:e3'])
  })

  it('truncates short headers and unwritten (zero) bytes at the end', async () => {
    let s = await openStorage()
    s.append([ent(1, 1)])
    await s.sync()
    const [seg] = await segments(dir)
    await appendFile(join(dir, seg), Buffer.from([1, 2, 3, 4, 5]))
    s = await reopen(s)
    assert.equal(s.lastIndex(), 1)
    assert.equal(s.stats.tornBytesTruncated, 5)
    // the file grew but the data never reached the disk: it reads back as zeros
    await appendFile(join(dir, seg), Buffer.alloc(700))
    s = await reopen(s)
    assert.equal(s.lastIndex(), 1)
    assert.equal(s.stats.tornBytesTruncated, 700)
  })

  it('truncates a last record with an unwritten sector (torn write)', async () => {
    let s = await openStorage()
    s.append([ent(1, 1)])
    await s.sync()
    s.append([ent(2, 1, 'x'.repeat(1500))])
    await s.sync()
    const [seg] = await segments(dir)
    const path = join(dir, seg)
    const buf = await readFile(path)
    // the last full sector inside the record was not written
    const sector = Math.floor((buf.length - 1) / SECTOR_BYTES) * SECTOR_BYTES - SECTOR_BYTES
    buf.fill(0, sector, sector + SECTOR_BYTES)
    await writeFile(path, buf)
    s = await reopen(s)
    assert.equal(s.lastIndex(), 1, 'the torn last entry is not used')
    assert.ok(s.stats.tornBytesTruncated > 1500)
  })

  const lastRecordAt = (buf: Uint8Array): number => scanRecords(buf).records.at(-1)!.offset
  for (const [what, at] of [['payload', (buf: Uint8Array) => buf.length - 1], ['length', lastRecordAt]] as const) {
    it(`refuses a bit flip in the ${what} of the last, synced record (not a torn write) with a clear error`, async () => {
      let s = await openStorage()
      s.append([ent(1, 1)])
      await s.sync()
      s.append([ent(2, 1, 'last')])
      await s.sync()
      await s.close()
      const [seg] = await segments(dir)
      const path = join(dir, seg)
      const buf = await readFile(path)
      buf[at(buf)] ^= 0x04
      await writeFile(path, buf)
      await assert.rejects(DiskLogStorage.open(dir), (err: Error) => err instanceof WalCorruptError && /bit flip/.test(err.message) && err.message.includes(seg))
      assert.deepEqual(await readFile(path), buf, 'the damaged file is left as it was for inspection')
      s = undefined as unknown as DiskLogStorage
    })
  }

  it('refuses a log damaged in the middle with a clear error', async () => {
    let s = await openStorage()
    s.append([ent(1, 1, 'first-entry-payload')])
    await s.sync()
    const [seg] = await segments(dir)
    const path = join(dir, seg)
    const damageAt = (await readFile(path)).indexOf(Buffer.from('first-entry-payload'))
    s.append([ent(2, 1), ent(3, 1)])
    await s.sync()
    await s.close()
    const buf = await readFile(path)
    buf[damageAt] ^= 0x01
    await writeFile(path, buf)
    await assert.rejects(DiskLogStorage.open(dir), (err: Error) => err instanceof WalCorruptError && /middle/.test(err.message) && err.message.includes(seg))
    // the damaged file is left as it was for inspection
    assert.deepEqual(await readFile(path), buf)
    s = undefined as unknown as DiskLogStorage
  })

  it('compacts, snapshots and recovers from the snapshot', async () => {
    let s = await openStorage()
    s.setConfState({ voters: ['a', 'b'], learners: [] })
    s.append([1, 2, 3, 4, 5].map(i => ent(i, i <= 2 ? 1 : 2)))
    s.setHardState({ term: 2, vote: 'a', commit: 5 })
    await s.sync()
    const snap = await s.createSnapshot(3, { voters: ['a', 'b'], learners: [] }, new TextEncoder().encode('state@3'))
    assert.equal(snap.metadata.term, 2)
    s.compact(3)
    await s.sync()
    assert.equal(s.firstIndex(), 4)
    assert.equal(s.term(3), 2)
    assert.throws(() => s.entries(2, 4), CompactedError)
    assert.throws(() => s.term(2), CompactedError)
    s = await reopen(s)
    assert.equal(s.firstIndex(), 4)
    assert.equal(s.lastIndex(), 5)
    assert.equal(s.term(3), 2)
    assert.deepEqual(texts(s.entries(4, 6)), ['4:2:e4', '5:2:e5'])
    assert.equal(new TextDecoder().decode(s.snapshot().data), 'state@3')
    assert.deepEqual(s.snapshot().metadata, { index: 3, term: 2, conf: { voters: ['a', 'b'], learners: [] } })
  })

  it('applies a leader snapshot, replacing the log, and recovers it', async () => {
    let s = await openStorage()
    s.append([ent(1, 1), ent(2, 1)])
    await s.sync()
    await s.applySnapshot({ metadata: { index: 10, term: 3, conf: { voters: ['x', 'y', 'z'], learners: [] } }, data: new TextEncoder().encode('s10') })
    s.setHardState({ term: 3, vote: '', commit: 10 })
    await s.sync()
    assert.equal(s.firstIndex(), 11)
    assert.equal(s.lastIndex(), 10)
    s.append([ent(11, 3)])
    await s.sync()
    s = await reopen(s)
    assert.equal(s.firstIndex(), 11)
    assert.equal(s.lastIndex(), 11)
    assert.equal(s.term(10), 3)
    assert.deepEqual(s.initialState().confState, { voters: ['x', 'y', 'z'], learners: [] })
  })

  it('keeps a snapshot whose log record was lost in a crash', async () => {
    let s = await openStorage()
    s.append([ent(1, 1), ent(2, 1)])
    await s.sync()
    await s.applySnapshot({ metadata: { index: 10, term: 3, conf: { voters: ['x'], learners: [] } }, data: new Uint8Array([1]) })
    // crash before sync(): the snapshot file is durable, its WAL record is not
    s = await reopen(s)
    assert.equal(s.firstIndex(), 11)
    assert.equal(s.term(10), 3)
    assert.equal(s.initialState().hardState.commit, 10)
  })

  it('rolls over segments and deletes the ones holding only compacted entries', async () => {
    let s = await openStorage(2048)
    for (let i = 1; i <= 200; i++) {
      s.append([ent(i, 1, 'payload-'.repeat(5))])
      s.setHardState({ term: 1, vote: 'a', commit: i })
      await s.sync()
    }
    const before = await segments(dir)
    assert.ok(before.length > 5, `expected several segments, got ${before.length}`)
    s.compact(150)
    for (let i = 201; i <= 260; i++) {
      s.append([ent(i, 1, 'payload-'.repeat(5))])
      await s.sync()
    }
    const after = await segments(dir)
    assert.ok(after.length < before.length, `old segments were not deleted (${before.length} → ${after.length})`)
    assert.ok(after[0] > before[0])
    s = await reopen(s, 2048)
    assert.equal(s.firstIndex(), 151)
    assert.equal(s.lastIndex(), 260)
    assert.equal(s.term(150), 1)
    assert.equal(s.initialState().hardState.commit, 200)
    assert.equal(s.entries(151, 261).length, 110)
  })

  it('recovers after deleting segments below an offset that a restart took from the snapshot', async () => {
    // found by `sim:raft --storage disk`: one segment per sync, the snapshot at 5 whose
    // WAL record is in no segment; the restart moves the offset to 5, the next rollover
    // deletes the segment holding 1…5 and heads the new one with offset 5; the segment in
    // between starts at entry 6, after the gap, and only that head names the term at 5
    let s = await openStorage(1)
    s.append([1, 2, 3, 4, 5].map(i => ent(i, 2)))
    s.setHardState({ term: 2, vote: 'a', commit: 5 })
    await s.sync()
    await s.createSnapshot(5, { voters: ['a'], learners: [] }, new TextEncoder().encode('state@5'))
    s = await reopen(s, 1)
    assert.equal(s.firstIndex(), 6)
    s.append([ent(6, 3), ent(7, 3)])
    await s.sync()
    assert.ok(!(await segments(dir)).includes('wal-0000000000000000.log'), 'the segment holding 1…5 was deleted')
    s = await reopen(s, 1)
    assert.equal(s.firstIndex(), 6)
    assert.equal(s.term(5), 2)
    assert.deepEqual(texts(s.entries(6, 8)), ['6:3:e6', '7:3:e7'])
  })

  it('keeps entries appended after a restart that adopted a snapshot conflicting with the log', async () => {
    // found by `sim:raft --storage disk` (seed 3390): the log holds 1…10 of term 1, the
    // leader's snapshot at 8 of term 2 reached the disk but its WAL record did not; the
    // restart adopts it, the node appends 9 and 10 of term 3 and commits them. Before, the
    // next restart replayed 9 and 10 onto the old log, adopted the snapshot again (a reset:
    // the terms at 8 differ) and lost them, with commit 10 past its last index 8.
    let s = await openStorage()
    s.append([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(i => ent(i, 1)))
    s.setHardState({ term: 1, vote: 'a', commit: 5 })
    await s.sync()
    await s.applySnapshot({ metadata: { index: 8, term: 2, conf: { voters: ['x'], learners: [] } }, data: new Uint8Array([8]) })
    s = await reopen(s) // crash before sync()
    assert.equal(s.lastIndex(), 8)
    s.append([ent(9, 3), ent(10, 3)])
    s.setHardState({ term: 3, vote: 'x', commit: 10 })
    await s.sync()
    s = await reopen(s)
    assert.equal(s.lastIndex(), 10)
    assert.equal(s.term(8), 2)
    assert.deepEqual(texts(s.entries(9, 11)), ['9:3:e9', '10:3:e10'])
    assert.deepEqual(s.initialState(), { hardState: { term: 3, vote: 'x', commit: 10 }, confState: { voters: ['x'], learners: [] } })
  })

  it('recovers entries that follow a snapshot whose own log record was lost in a crash', async () => {
    // found by `sim:raft --storage disk`: the log holds 1…9 then 11; only the snapshot
    // file names the term at 10 (it was refused as "a segment is missing")
    let s = await openStorage()
    s.append([1, 2, 3, 4, 5, 6, 7, 8, 9].map(i => ent(i, 1)))
    await s.sync()
    await s.applySnapshot({ metadata: { index: 10, term: 3, conf: { voters: ['x'], learners: [] } }, data: new Uint8Array([1]) })
    s = await reopen(s) // crash before sync(): the snapshot file is durable, its WAL record is not
    s.append([ent(11, 3)])
    await s.sync()
    s = await reopen(s)
    assert.equal(s.firstIndex(), 11)
    assert.equal(s.term(10), 3)
    assert.deepEqual(texts(s.entries(11, 12)), ['11:3:e11'])
  })

  it('keeps a leader snapshot committed, with its membership, when a crash tore off the records after its own', async () => {
    // found by `sim:raft --storage disk`: the Ready installing a snapshot writes [reset to
    // the snapshot, membership, entries, hard state] in one write; a power cut may keep a
    // prefix of it. Before, the node restarted with the offset at 12 and commit 7 (which the
    // core refuses) and the membership of before the snapshot.
    let s = await openStorage()
    s.setConfState({ voters: ['a'], learners: [] })
    s.append([1, 2, 3, 4, 5, 6, 7].map(i => ent(i, 1)))
    s.setHardState({ term: 1, vote: 'a', commit: 7 })
    await s.sync()
    await s.applySnapshot({ metadata: { index: 12, term: 2, conf: { voters: ['x', 'y'], learners: [] } }, data: new TextEncoder().encode('s12') })
    s.setHardState({ term: 2, vote: '', commit: 12 })
    await s.sync()
    await s.close()
    const [segment] = await segments(dir)
    const path = join(dir, segment)
    const buf = await readFile(path)
    const reset = scanRecords(buf).records.find(r => r.type === RecordType.Compaction)!
    await writeFile(path, buf.subarray(0, reset.offset + RECORD_HEADER_BYTES + reset.payload.length))
    s = await openStorage()
    assert.equal(s.firstIndex(), 13)
    assert.equal(s.term(12), 2)
    assert.deepEqual(s.initialState(), { hardState: { term: 1, vote: 'a', commit: 12 }, confState: { voters: ['x', 'y'], learners: [] } })
  })

  it('refuses damage in a sealed (non-last) segment', async () => {
    let s = await openStorage(512)
    for (let i = 1; i <= 40; i++) {
      s.append([ent(i, 1, 'p'.repeat(40))])
      await s.sync()
    }
    await s.close()
    const segs = await segments(dir)
    assert.ok(segs.length >= 2)
    const path = join(dir, segs[0])
    const buf = await readFile(path)
    await writeFile(path, buf.subarray(0, buf.length - 3))
    await assert.rejects(DiskLogStorage.open(dir), /sealed segment/)
    s = undefined as unknown as DiskLogStorage
  })
})
