// Log-safety rules that a mutation test of the Raft core and storage showed no other test
// checked: a follower commits only entries it knows match its leader's, and installing a
// snapshot drops a conflicting suffix of the log (in memory and on disk), so that the stale
// entries can neither be applied nor make the node vote for a candidate missing committed ones.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EntryType, MessageType } from '../../src/raft/types.js'
import type { Entry, HardState, LogStorage, Snapshot } from '../../src/raft/types.js'
import { MemoryLogStorage, RawNode, createRand, makeMessage } from '../../src/raft/core/index.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'

const conf = { voters: ['l', 'f', 'c'], learners: [] }

function entries (terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: EntryType.Normal, data: new Uint8Array([i + 1, term]) }))
}

function snapshotAt (index: number, term: number): Snapshot {
  return { metadata: { index, term, conf }, data: new Uint8Array([9]) }
}

/** A follower `f` over `storage` that installs `snap` sent by leader `l` of `term`, persisting the Ready with `persist`. */
async function installSnapshot (storage: LogStorage, snap: Snapshot, term: number, persist: (s: Snapshot, hs: HardState) => Promise<void> | void): Promise<RawNode> {
  // no leader lease: the vote request below is judged on the logs alone
  const f = new RawNode({ id: 'f', storage, rand: createRand(1), checkQuorum: false })
  f.step(makeMessage({ type: MessageType.Snap, from: 'l', to: 'f', term, snapshot: snap }))
  const rd = f.ready()
  assert.ok(rd.snapshot !== undefined && rd.hardState !== undefined, 'the follower installs the snapshot')
  await persist(rd.snapshot, rd.hardState)
  f.advance()
  return f
}

/** A candidate `c` whose log ends with the stale entries asks `f` for its vote: `f` must refuse. */
function assertRefusesStaleCandidate (f: RawNode, lastIndex: number, lastTerm: number, term: number): void {
  f.step(makeMessage({ type: MessageType.Vote, from: 'c', to: 'f', term, index: lastIndex, logTerm: lastTerm }))
  const votes = f.ready().messages.filter(m => m.type === MessageType.VoteResp)
  assert.deepEqual(votes.map(m => m.reject), [true], 'a candidate missing the snapshot\'s committed entry gets no vote')
}

describe('raft log safety', () => {
  it('a follower commits no further than the last entry of the append it matched (not its own last index)', () => {
    // f holds 3@2, 4@2, 5@2 from a deposed leader of term 2; the leader of term 3 has 3@2
    // too, but a different entry at 4 that it committed
    const storage = new MemoryLogStorage(conf)
    storage.append(entries([1, 1, 2, 2, 2]))
    storage.setHardState({ term: 2, vote: '', commit: 2 })
    const f = new RawNode({ id: 'f', storage, rand: createRand(1) })
    const [, , third] = entries([1, 1, 2])
    f.step(makeMessage({ type: MessageType.App, from: 'l', to: 'f', term: 3, index: 2, logTerm: 1, commit: 4, entries: [third] }))
    assert.equal(f.status().commit, 3, 'only 3@2 is known to match the leader\'s log; 4@2 is not the committed 4')
    const rd = f.ready()
    assert.deepEqual(rd.committedEntries.map(e => e.index), [1, 2, 3])
    assert.deepEqual(rd.messages.map(m => [m.type, m.index, m.reject]), [[MessageType.AppResp, 3, false]])
  })

  it('memory storage: installing a snapshot drops a conflicting suffix', async () => {
    const storage = new MemoryLogStorage(conf)
    storage.append(entries([1, 1, 1, 1, 1]))
    storage.setHardState({ term: 1, vote: '', commit: 1 })
    const f = await installSnapshot(storage, snapshotAt(3, 2), 2, (s, hs) => { storage.applySnapshot(s); storage.setHardState(hs) })
    assert.equal(storage.lastIndex(), 3)
    assert.equal(storage.term(3), 2)
    assertRefusesStaleCandidate(f, 5, 1, 3)
  })

  describe('disk storage', () => {
    let dir: string
    const opened: DiskLogStorage[] = []
    beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-raft-log-safety-')) })
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    })

    it('installing a snapshot drops a conflicting suffix, in memory and after a restart', async () => {
      const storage = await DiskLogStorage.open(dir)
      opened.push(storage)
      storage.setConfState(conf)
      storage.append(entries([1, 1, 1, 1, 1]))
      storage.setHardState({ term: 1, vote: '', commit: 1 })
      await storage.sync()
      const f = await installSnapshot(storage, snapshotAt(3, 2), 2, async (s, hs) => { await storage.applySnapshot(s); storage.setHardState(hs); await storage.sync() })
      assert.equal(storage.lastIndex(), 3)
      assert.equal(storage.term(3), 2)
      assertRefusesStaleCandidate(f, 5, 1, 3)
      await storage.close()
      const reopened = await DiskLogStorage.open(dir)
      opened.push(reopened)
      assert.equal(reopened.lastIndex(), 3)
      assert.equal(reopened.term(3), 2)
      assertRefusesStaleCandidate(new RawNode({ id: 'f', storage: reopened, rand: createRand(2), checkQuorum: false }), 5, 1, 4)
    })
  })
})
