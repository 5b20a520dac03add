// Paper scenarios for the pure Raft core (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", and the etcd-io/raft test suite they inspired).
import assert from 'node:assert/strict'
import { MessageType, StateRole } from '../../src/raft/types.js'
import { TestNet } from './core-harness.js'

const plain = { preVote: false, checkQuorum: false }

describe('raft core: elections', () => {
  it('elects exactly one leader from randomized timeouts', () => {
    const net = new TestNet(['a', 'b', 'c', 'd', 'e'])
    for (let i = 0; i < 40 && net.leader() === undefined; i++) net.tickAll()
    const leaders = ['a', 'b', 'c', 'd', 'e'].filter(id => net.role(id) === StateRole.Leader)
    assert.equal(leaders.length, 1)
    const term = net.get(leaders[0]).raw.status().term
    for (const id of ['a', 'b', 'c', 'd', 'e']) assert.equal(net.get(id).raw.status().lead, leaders[0])
    assert.ok(term >= 1)
  })

  it('election restriction (§5.4.1): a candidate whose log is behind a majority cannot win', () => {
    const net = new TestNet(['a', 'b', 'c'], plain, { a: { log: [1, 1, 2] }, b: { log: [1, 1] }, c: { log: [1, 1, 2] } })
    net.campaign('b')
    assert.notEqual(net.role('b'), StateRole.Leader)
    const rejects = net.delivered.filter(m => m.type === MessageType.VoteResp && m.to === 'b')
    assert.equal(rejects.length, 2)
    assert.ok(rejects.every(m => m.reject))
    net.campaign('a')
    assert.equal(net.role('a'), StateRole.Leader)
  })

  it('a candidate with an equally long log of a higher last term wins', () => {
    const net = new TestNet(['a', 'b', 'c'], plain, { a: { log: [1, 1, 1] }, b: { log: [1, 3] }, c: { log: [1, 1, 1] } })
    net.campaign('b')
    assert.equal(net.role('b'), StateRole.Leader)
    // the longer log of older terms is overwritten by the leader's
    net.propose('b', 'x')
    assert.deepEqual(net.logTerms('a'), net.logTerms('b'))
  })

  it('a vote request of an older term is rejected with the current term, so the candidate catches up', () => {
    const net = new TestNet(['a', 'b', 'c'], plain)
    net.filter = () => false
    for (let i = 0; i < 5; i++) net.campaign('a') // a reaches term 5 alone
    net.filter = m => (m.from === 'c' && m.to === 'a') || (m.from === 'a' && m.to === 'c')
    net.campaign('c') // term 1
    const aTerm = net.get('a').raw.status().term
    assert.equal(aTerm, 5)
    const reply = net.delivered.filter(m => m.type === MessageType.VoteResp && m.from === 'a' && m.to === 'c').at(-1)
    assert.ok(reply?.reject === true && reply.term === aTerm)
    assert.equal(net.get('c').raw.status().term, aTerm)
  })

  it('pre-vote: a partitioned node does not raise its term, and does not disrupt the leader on rejoin', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    assert.equal(net.role('a'), StateRole.Leader)
    const term = net.get('a').raw.status().term
    net.isolate('c')
    net.tick('c', 100)
    assert.equal(net.get('c').raw.status().term, term)
    net.heal()
    net.tickAll(5)
    assert.equal(net.role('a'), StateRole.Leader)
    assert.equal(net.get('a').raw.status().term, term)
    assert.equal(net.get('c').raw.status().lead, 'a')
  })

  it('check-quorum: a leader that lost its quorum steps down', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.isolate('a')
    net.tick('a', 10)
    assert.equal(net.role('a'), StateRole.Leader) // first check only clears the activity marks
    net.tick('a', 10)
    assert.equal(net.role('a'), StateRole.Follower)
  })

  it('lease: a follower that heard from its leader recently ignores vote requests of higher terms', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const term = net.get('b').raw.status().term
    net.isolate('a')
    // c has not heard from a for a while and campaigns; b is still within a's lease
    net.get('c').raw.campaign()
    net.get('b').raw.tick()
    net.settle()
    assert.equal(net.get('b').raw.status().term, term)
    assert.equal(net.get('b').raw.status().lead, 'a')
    assert.notEqual(net.role('c'), StateRole.Leader)
  })
})

describe('raft core: replication', () => {
  // Figure 7: the leader of term 8 and the possible follower logs (a)–(f)
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]
  }
  for (const [name, log] of Object.entries(followers)) {
    it(`Figure 7 (${name}): the leader brings the follower's log to its own, with at most one rejected probe`, () => {
      const net = new TestNet(['l', 'f', 'x'], {}, { l: { log: leaderLog, term: 7 }, f: { log } })
      net.campaign('l')
      assert.equal(net.role('l'), StateRole.Leader)
      assert.equal(net.get('l').raw.status().term, 8)
      net.propose('l', 'next')
      assert.deepEqual(net.logTerms('f'), [...leaderLog, 8, 8])
      assert.deepEqual(net.logTerms('x'), [...leaderLog, 8, 8])
      // fast back-off: the follower's hint skips whole terms, never one entry per round trip
      const rejections = net.delivered.filter(m => m.type === MessageType.AppResp && m.from === 'f' && m.reject)
      assert.ok(rejections.length <= 1, `${rejections.length} rejections`)
      assert.equal(net.get('l').raw.status().commit, leaderLog.length + 2)
    })
  }

  it('fast back-off skips a long conflicting suffix in one round trip', () => {
    const long = [1, ...Array<number>(200).fill(2)]
    const net = new TestNet(['l', 'f', 'x'], {}, { l: { log: [1, 3], term: 3 }, f: { log: long }, x: { log: [1, 3] } })
    net.campaign('l')
    net.propose('l', 'next')
    assert.deepEqual(net.logTerms('f'), [1, 3, 4, 4])
    const rejections = net.delivered.filter(m => m.type === MessageType.AppResp && m.from === 'f' && m.reject)
    assert.ok(rejections.length <= 2, `${rejections.length} rejections`)
  })

  it('Figure 8 / §5.4.2: an entry of an earlier term is not committed by counting replicas', () => {
    // (c): s1 leads term 4 with 2@2 on s1, s2, s3 — a majority — but that does not commit it
    const setup = { s1: { log: [1, 2], term: 3 }, s2: { log: [1, 2] }, s3: { log: [1] }, s4: { log: [1] }, s5: { log: [1, 3] } }
    const net = new TestNet(['s1', 's2', 's3', 's4', 's5'], { ...plain, maxSizePerMsg: 1 }, setup)
    // no entry of term 4 leaves s1: only 2@2 is replicated
    net.rewrite = m => m.from === 's1' ? { ...m, entries: m.entries.filter(e => e.term !== 4) } : m
    net.filter = m => m.to !== 's5' && m.from !== 's5' // s5 is down
    net.campaign('s1')
    assert.equal(net.role('s1'), StateRole.Leader)
    assert.equal(net.get('s1').raw.status().term, 4)
    for (const id of ['s2', 's3', 's4']) assert.deepEqual(net.logTerms(id), [1, 2])
    assert.ok(net.get('s1').raw.status().commit < 2, 'index 2 must not be committed')
    // (d): s1 crashes; s5 wins term 5 and overwrites 2@2 everywhere — safe, as it never committed
    net.rewrite = m => m
    net.isolate('s1')
    net.campaign('s5') // term 4: the others already voted in it
    if (net.role('s5') !== StateRole.Leader) net.campaign('s5')
    assert.equal(net.role('s5'), StateRole.Leader)
    net.propose('s5', 'x')
    for (const id of ['s2', 's3', 's4', 's5']) assert.deepEqual(net.logTerms(id), net.logTerms('s5'))
    assert.equal(net.logTerms('s2')[1], 3)
  })

  it('Figure 8 (e): once an entry of the current term is on a majority, everything before it is committed and survives', () => {
    const setup = { s1: { log: [1, 2], term: 3 }, s2: { log: [1, 2] }, s3: { log: [1] }, s4: { log: [1] }, s5: { log: [1, 3] } }
    const net = new TestNet(['s1', 's2', 's3', 's4', 's5'], { ...plain, maxSizePerMsg: 1 }, setup)
    net.filter = m => m.to !== 's5' && m.from !== 's5'
    net.campaign('s1')
    assert.equal(net.get('s1').raw.status().commit, 3)
    net.isolate('s1')
    net.campaign('s5')
    net.campaign('s5')
    assert.notEqual(net.role('s5'), StateRole.Leader)
    assert.deepEqual(net.logTerms('s2'), [1, 2, 4])
  })

  it('leader appends an empty entry of its term on election and commits it', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const st = net.get('a').raw.status()
    assert.equal(st.lastIndex, 1)
    assert.equal(st.commit, 1)
    assert.equal(net.get('a').raw.term(1), st.term)
  })

  it('pipelines appends within the inflight window and batches entries up to maxSizePerMsg', () => {
    const net = new TestNet(['a', 'b', 'c'], { maxInflightMsgs: 4, maxSizePerMsg: 1000 })
    net.campaign('a')
    net.filter = m => m.type !== MessageType.AppResp // nothing is acknowledged
    const seen = net.delivered.length
    for (let i = 0; i < 20; i++) net.get('a').raw.propose(new Uint8Array(10))
    net.settle()
    const apps = net.delivered.slice(seen).filter(m => m.type === MessageType.App && m.to === 'b')
    // four appends in flight, then the window is full; the four were sent as one message
    assert.equal(apps.length, 1)
    assert.equal(apps[0].entries.length, 4)
    net.heal()
    net.tick('a')
    net.get('a').raw.proposeBatch(Array.from({ length: 200 }, () => new Uint8Array(100)))
    net.settle()
    assert.deepEqual(net.logTerms('b'), net.logTerms('a'))
    const big = net.delivered.filter(m => m.type === MessageType.App && m.to === 'b' && m.entries.length > 1)
    assert.ok(big.length > 0)
    for (const m of big) assert.ok(m.entries.reduce((n, e) => n + e.data.length + 16, 0) <= 1000)
  })

  it('applies committed entries in order on every member', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    for (let i = 0; i < 10; i++) net.propose(i % 2 === 0 ? 'a' : 'b', `cmd${i}`)
    const expected = Array.from({ length: 10 }, (_, i) => `cmd${i}`)
    for (const id of ['a', 'b', 'c']) assert.deepEqual(net.appliedTexts(id), expected)
  })
})
