// Bad input to the core: malformed messages are refused with a one-line error and change
// nothing; messages from non-members and absurd terms are ignored where they could
// disrupt the group; nothing crashes.
import assert from 'node:assert/strict'
import { ConfChangeType, EntryType, MessageType, StateRole } from '../../src/raft/types.js'
import type { Message } from '../../src/raft/types.js'
import { InvalidMessageError, MemoryLogStorage, ProposalDroppedError, RawNode, createRand, decodeConfChange, encodeConfChange, makeMessage } from '../../src/raft/core/index.js'
import { TestNet } from './core-harness.js'

const FAR = Number.MAX_SAFE_INTEGER - 1

function snapshotOf (net: TestNet, id: string): unknown {
  const m = net.get(id)
  return { status: m.raw.status(), hasReady: m.raw.hasReady(), hard: m.storage.initialState().hardState }
}

describe('raft core: malformed messages', () => {
  const base = (): Message => makeMessage({ type: MessageType.App, from: 'a', to: 'b', term: 2, index: 1, logTerm: 1, commit: 1 })
  const cases: Array<[string, (m: Message) => unknown, RegExp]> = [
    ['addressed to another node', m => ({ ...m, to: 'c' }), /addressed to c/],
    ['from itself', m => ({ ...m, from: 'b' }), /from itself/],
    ['empty sender', m => ({ ...m, from: '' }), /bad sender/],
    ['local type Hup', m => ({ ...m, type: MessageType.Hup }), /local message type/],
    ['local type SnapStatus', m => ({ ...m, type: MessageType.SnapStatus }), /local message type/],
    ['unknown type', m => ({ ...m, type: 99 }), /unknown type 99/],
    ['negative term', m => ({ ...m, term: -1 }), /term is not a non-negative integer/],
    ['fractional index', m => ({ ...m, index: 1.5 }), /index is not/],
    ['NaN commit', m => ({ ...m, commit: Number.NaN }), /commit is not/],
    ['term 0 on an append', m => ({ ...m, term: 0 }), /App with term 0/],
    ['a term on a proposal', m => ({ ...m, type: MessageType.Prop, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(1) }] }), /Prop with term 2/],
    ['a gap in entries', m => ({ ...m, entries: [{ term: 2, index: 3, type: EntryType.Normal, data: new Uint8Array(0) }] }), /index 3, expected 2/],
    ['entry terms going down', m => ({ ...m, entries: [{ term: 2, index: 2, type: EntryType.Normal, data: new Uint8Array(0) }, { term: 1, index: 3, type: EntryType.Normal, data: new Uint8Array(0) }] }), /out of order/],
    ['entry term above the message term', m => ({ ...m, entries: [{ term: 9, index: 2, type: EntryType.Normal, data: new Uint8Array(0) }] }), /out of order/],
    ['entry without data', m => ({ ...m, entries: [{ term: 2, index: 2, type: EntryType.Normal }] }), /no data/],
    ['unknown entry type', m => ({ ...m, entries: [{ term: 2, index: 2, type: 7, data: new Uint8Array(0) }] }), /unknown type 7/],
    ['context not bytes', m => ({ ...m, context: 'x' }), /context is not bytes/],
    ['entries on a heartbeat', m => ({ ...m, type: MessageType.Heartbeat, entries: [{ term: 2, index: 2, type: EntryType.Normal, data: new Uint8Array(0) }] }), /carries entries/],
    ['snapshot message without a snapshot', m => ({ ...m, type: MessageType.Snap }), /snapshot missing/],
    ['snapshot at index 0', m => ({ ...m, type: MessageType.Snap, snapshot: { metadata: { index: 0, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array(0) } }), /bad snapshot metadata/],
    ['snapshot with a bad configuration', m => ({ ...m, type: MessageType.Snap, snapshot: { metadata: { index: 5, term: 1, conf: { voters: [''], learners: [] } }, data: new Uint8Array(0) } }), /bad node id/],
    ['not an object', () => null, /not an object/]
  ]
  for (const [name, mangle, reason] of cases) {
    it(`refuses ${name} without changing state`, () => {
      const net = new TestNet(['a', 'b', 'c'])
      net.campaign('a')
      const before = snapshotOf(net, 'b')
      const bad = mangle(base()) as Message
      assert.throws(() => { net.get('b').raw.step(bad) }, (err: Error) => {
        assert.ok(err instanceof InvalidMessageError)
        assert.match(err.message, reason)
        assert.ok(!err.message.includes('\n'))
        return true
      })
      assert.deepEqual(snapshotOf(net, 'b'), before)
    })
  }

  it('refuses malformed conf change data with a one-line error', () => {
    assert.throws(() => decodeConfChange(new Uint8Array([1])), /too short/)
    assert.throws(() => decodeConfChange(new Uint8Array([9, 65])), /unknown type 9/)
    assert.throws(() => decodeConfChange(new Uint8Array([0, 0xff, 0xfe])), /not valid UTF-8/)
    assert.throws(() => decodeConfChange(new Uint8Array(300).fill(65)), /too long/)
    assert.throws(() => encodeConfChange({ type: ConfChangeType.AddNode, node: '' }), /empty/)
    assert.deepEqual(decodeConfChange(encodeConfChange({ type: ConfChangeType.AddLearner, node: 'peer-é' })), { type: ConfChangeType.AddLearner, node: 'peer-é' })
  })
})

describe('raft core: hostile but well-formed messages', () => {
  it('a vote request with a far-future term from a non-member does not disturb a follower in its lease', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const before = snapshotOf(net, 'b')
    for (const type of [MessageType.Vote, MessageType.PreVote]) {
      net.get('b').raw.step(makeMessage({ type, from: 'mallory', to: 'b', term: FAR, index: FAR, logTerm: FAR }))
    }
    assert.deepEqual(snapshotOf(net, 'b'), before)
  })

  it('appends, heartbeats and snapshots of a far-future term from a non-member are ignored while the leader is live', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const before = snapshotOf(net, 'b')
    const b = net.get('b').raw
    b.step(makeMessage({ type: MessageType.App, from: 'mallory', to: 'b', term: FAR, index: 1, logTerm: 1, commit: FAR, entries: [{ term: FAR, index: 2, type: EntryType.Normal, data: new Uint8Array(3) }] }))
    b.step(makeMessage({ type: MessageType.Heartbeat, from: 'mallory', to: 'b', term: FAR, commit: FAR }))
    b.step(makeMessage({ type: MessageType.Snap, from: 'mallory', to: 'b', term: FAR, snapshot: { metadata: { index: FAR, term: FAR, conf: { voters: ['mallory'], learners: [] } }, data: new Uint8Array(0) } }))
    b.step(makeMessage({ type: MessageType.TimeoutNow, from: 'mallory', to: 'b', term: FAR }))
    assert.deepEqual(snapshotOf(net, 'b'), before)
    // the leader too
    const beforeA = snapshotOf(net, 'a')
    net.get('a').raw.step(makeMessage({ type: MessageType.AppResp, from: 'mallory', to: 'a', term: FAR, index: FAR }))
    net.get('a').raw.step(makeMessage({ type: MessageType.HeartbeatResp, from: 'mallory', to: 'a', term: FAR }))
    assert.deepEqual(snapshotOf(net, 'a'), beforeA)
  })

  it('responses from non-members never change the leader or its term', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const a = net.get('a').raw
    const term = a.status().term
    a.step(makeMessage({ type: MessageType.AppResp, from: 'mallory', to: 'a', term, index: FAR }))
    a.step(makeMessage({ type: MessageType.HeartbeatResp, from: 'mallory', to: 'a', term, context: new Uint8Array([1]) }))
    a.step(makeMessage({ type: MessageType.VoteResp, from: 'mallory', to: 'a', term: term + 1 }))
    assert.equal(a.status().role, StateRole.Leader)
    assert.equal(a.status().term, term)
    assert.equal(a.status().commit, net.get('b').raw.status().commit)
  })

  it("does not count non-members' votes", () => {
    const net = new TestNet(['a', 'b', 'c'], { preVote: false })
    net.filter = () => false
    net.campaign('a')
    const a = net.get('a').raw
    assert.equal(a.status().role, StateRole.Candidate)
    const term = a.status().term
    for (const from of ['x', 'y', 'z']) a.step(makeMessage({ type: MessageType.VoteResp, from, to: 'a', term }))
    assert.equal(a.status().role, StateRole.Candidate)
    a.step(makeMessage({ type: MessageType.VoteResp, from: 'b', to: 'a', term }))
    assert.equal(a.status().role, StateRole.Leader)
  })

  it('drops proposals forwarded by non-members and reads asked by them', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const a = net.get('a').raw
    const last = a.status().lastIndex
    a.step(makeMessage({ type: MessageType.Prop, from: 'mallory', to: 'a', entries: [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(1) }] }))
    a.step(makeMessage({ type: MessageType.ReadIndex, from: 'mallory', to: 'a', context: new Uint8Array([7]) }))
    net.settle()
    assert.equal(a.status().lastIndex, last)
    assert.ok(!net.delivered.some(m => m.to === 'mallory'))
  })

  it('messages of older terms are answered with the current term, never obeyed', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.get('a').raw.transferLeader('b')
    net.settle()
    const a = net.get('a')
    const before = a.raw.status()
    a.raw.step(makeMessage({ type: MessageType.App, from: 'c', to: 'a', term: 1, index: 0, logTerm: 0, commit: 0, entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(9) }] }))
    const rd = a.raw.ready()
    assert.deepEqual(rd.messages.map(m => [m.type, m.to, m.term]), [[MessageType.AppResp, 'c', before.term]])
    assert.deepEqual(rd.entries, [])
    a.raw.advance()
    assert.deepEqual(a.raw.status(), before)
  })

  it('an entry replaced between ready() and advance() is handed out again, not taken as persisted', () => {
    const storage = new MemoryLogStorage({ voters: ['a', 'b', 'c'], learners: [] })
    const b = new RawNode({ id: 'b', storage, rand: createRand(1) })
    const entry = (index: number, term: number): { term: number, index: number, type: EntryType, data: Uint8Array } => ({ term, index, type: EntryType.Normal, data: new Uint8Array([index, term]) })
    b.step(makeMessage({ type: MessageType.App, from: 'a', to: 'b', term: 1, entries: [entry(1, 1), entry(2, 1)] }))
    const rd1 = b.ready()
    assert.deepEqual(rd1.entries.map(e => [e.index, e.term]), [[1, 1], [2, 1]])
    storage.append(rd1.entries) // persisting in the background …
    // … while a new leader replaces entry 2
    b.step(makeMessage({ type: MessageType.App, from: 'c', to: 'b', term: 2, index: 1, logTerm: 1, entries: [entry(2, 2)] }))
    if (rd1.hardState !== undefined) storage.setHardState(rd1.hardState)
    b.advance()
    assert.equal(b.term(2), 2)
    const rd2 = b.ready()
    assert.ok(rd2.entries.some(e => e.index === 2 && e.term === 2), 'the replacing entry must be persisted')
    storage.append(rd2.entries)
    assert.equal(storage.term(2), 2)
    assert.deepEqual(rd2.messages.map(m => [m.to, m.type, m.index, m.reject]), [['c', MessageType.AppResp, 2, false]])
    b.advance()
  })

  it('refuses local misuse with clear errors', () => {
    const storage = new MemoryLogStorage({ voters: ['a'], learners: [] })
    assert.throws(() => new RawNode({ id: '', storage, rand: createRand(1) }), /id is empty/)
    assert.throws(() => new RawNode({ id: 'a', storage, rand: createRand(1), electionTick: 1 }), /electionTick/)
    const raw = new RawNode({ id: 'a', storage, rand: createRand(1) })
    assert.throws(() => { raw.propose(new Uint8Array(1)) }, ProposalDroppedError)
    assert.throws(() => { raw.advance() }, /without a ready/)
    raw.campaign()
    raw.ready()
    assert.throws(() => raw.ready(), /before advance/)
    assert.equal(raw.hasReady(), false)
  })
})
