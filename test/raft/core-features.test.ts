// ReadIndex, leadership transfer, membership changes and snapshots in the pure core.
import assert from 'node:assert/strict'
import { ConfChangeType, MessageType, StateRole } from '../../src/raft/types.js'
import { LOG_LOST, ProposalDroppedError, makeMessage } from '../../src/raft/core/index.js'
import { TestNet } from './core-harness.js'

const ctx = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('raft core: linearizable reads (ReadIndex)', () => {
  it('the leader answers after a heartbeat round, at its commit index', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.propose('a', 'x')
    const before = net.delivered.length
    net.get('a').raw.readIndex(ctx('r1'))
    net.settle()
    const rs = net.get('a').readStates
    assert.equal(rs.length, 1)
    assert.equal(text(rs[0].context), 'r1')
    assert.equal(rs[0].index, net.get('a').raw.status().commit)
    // the read cost a heartbeat round carrying its context
    assert.ok(net.delivered.slice(before).some(m => m.type === MessageType.Heartbeat && text(m.context) === 'r1'))
  })

  it('a follower forwards the read to the leader and gets the index back', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.propose('a', 'x')
    net.get('b').raw.readIndex(ctx('r2'))
    net.settle()
    assert.deepEqual(net.get('b').readStates.map(r => [text(r.context), r.index]), [['r2', 2]])
  })

  it('a stale leader cut off from the majority never answers a read', () => {
    // without check-quorum, the old leader does not step down by itself
    const net = new TestNet(['a', 'b', 'c'], { preVote: false, checkQuorum: false })
    net.campaign('a')
    net.isolate('a')
    net.campaign('b')
    assert.equal(net.role('b'), StateRole.Leader)
    net.propose('b', 'newer')
    assert.equal(net.role('a'), StateRole.Leader) // it does not know yet
    net.get('a').raw.readIndex(ctx('stale'))
    net.settle()
    net.tick('a', 30)
    assert.deepEqual(net.get('a').readStates, [])
    net.heal()
    net.tickAll(30)
    assert.deepEqual(net.get('a').readStates, [])
    assert.equal(net.role('a'), StateRole.Follower)
  })

  it('a new leader answers reads only after committing an entry of its own term', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.filter = m => m.type !== MessageType.AppResp
    net.campaign('a')
    assert.equal(net.role('a'), StateRole.Leader)
    net.get('a').raw.readIndex(ctx('early'))
    net.settle()
    assert.deepEqual(net.get('a').readStates, [])
    net.heal()
    net.tick('a') // heartbeat → responses → the empty entry commits → the read proceeds
    assert.equal(net.get('a').readStates.length, 1)
    assert.equal(net.get('a').readStates[0].index, 1)
  })
})

describe('raft core: leadership transfer', () => {
  it('hands leadership to an up-to-date follower at once', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    const term = net.get('a').raw.status().term
    net.get('a').raw.transferLeader('b')
    net.settle()
    assert.equal(net.role('b'), StateRole.Leader)
    assert.equal(net.get('b').raw.status().term, term + 1)
    assert.equal(net.get('a').raw.status().lead, 'b')
  })

  it('catches a lagging transferee up first, and refuses proposals meanwhile', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.isolate('c')
    for (let i = 0; i < 5; i++) net.propose('a', `p${i}`)
    net.get('a').raw.transferLeader('c')
    net.settle()
    assert.throws(() => { net.get('a').raw.propose(ctx('during')) }, ProposalDroppedError)
    net.heal()
    net.tick('a') // heartbeat → c answers → catch-up → TimeoutNow
    assert.equal(net.role('c'), StateRole.Leader)
    assert.deepEqual(net.appliedTexts('c'), ['p0', 'p1', 'p2', 'p3', 'p4'])
  })

  it('aborts a transfer that does not finish within an election timeout', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.isolate('c')
    net.get('a').raw.transferLeader('c')
    net.tick('a', 10)
    assert.equal(net.role('a'), StateRole.Leader)
    assert.equal(net.get('a').raw.status().leadTransferee, '')
    net.propose('a', 'after')
    assert.deepEqual(net.appliedTexts('b'), ['after'])
  })
})

describe('raft core: membership changes', () => {
  const peers = { peers: ['a', 'b', 'c'] }
  it('allows one pending change at a time', () => {
    const net = new TestNet(['a', 'b', 'c'], peers)
    net.campaign('a')
    net.filter = () => false
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.AddNode, node: 'd' })
    assert.throws(() => { net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'c' }) }, /another membership change is pending/)
    net.heal()
    net.add('d', [], 0, { voters: [], learners: [] })
    net.tick('a')
    assert.deepEqual(net.get('a').raw.status().voters.sort(), ['a', 'b', 'c', 'd'])
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'c' })
    net.settle()
    assert.deepEqual(net.get('a').raw.status().voters.sort(), ['a', 'b', 'd'])
  })

  it('a new leader accepts no change before its first entry is applied', () => {
    const net = new TestNet(['a', 'b', 'c'], peers)
    net.filter = m => m.type !== MessageType.AppResp
    net.campaign('a')
    assert.throws(() => { net.get('a').raw.proposeConfChange({ type: ConfChangeType.AddNode, node: 'd' }) }, ProposalDroppedError)
  })

  it('replaces a dead member with a live one', () => {
    const net = new TestNet(['a', 'b', 'c'], peers)
    net.campaign('a')
    net.isolate('c') // c is dead
    net.add('d', [], 0, { voters: [], learners: [] })
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.AddNode, node: 'd' })
    net.settle()
    net.tick('a')
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'c' })
    net.settle()
    assert.deepEqual(net.get('d').raw.status().voters.sort(), ['a', 'b', 'd'])
    // now a and d are a quorum without b
    net.filter = m => m.to !== 'c' && m.from !== 'c' && m.to !== 'b' && m.from !== 'b'
    net.propose('a', 'with d')
    assert.deepEqual(net.appliedTexts('d'), ['with d'])
  })

  it('a removed leader steps down and the others elect a new one', () => {
    const net = new TestNet(['a', 'b', 'c'], peers)
    net.campaign('a')
    net.propose('a', 'x')
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'a' })
    net.settle()
    assert.equal(net.role('a'), StateRole.Follower)
    net.tickAll(50)
    assert.equal(net.role('a'), StateRole.Follower) // not a voter: never campaigns
    const leader = net.leader()
    assert.ok(leader === 'b' || leader === 'c')
    net.propose(leader, 'y')
    assert.deepEqual(net.appliedTexts(leader === 'b' ? 'c' : 'b'), ['x', 'y'])
  })

  it('a learner receives the log but does not vote or count for commit', () => {
    const net = new TestNet(['a', 'b', 'c'], peers)
    net.campaign('a')
    net.add('l', [], 0, { voters: [], learners: [] })
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.AddLearner, node: 'l' })
    net.settle()
    net.tick('a')
    net.propose('a', 'x')
    assert.deepEqual(net.appliedTexts('l'), ['x'])
    assert.deepEqual(net.get('a').raw.status().learners, ['l'])
    net.tick('l', 100)
    assert.equal(net.role('l'), StateRole.Follower)
  })

  it('refuses to remove the last voter or a non-member', () => {
    const net = new TestNet(['a'])
    net.campaign('a')
    assert.throws(() => { net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'a' }) }, /last voter/)
    assert.throws(() => { net.get('a').raw.proposeConfChange({ type: ConfChangeType.RemoveNode, node: 'zz' }) }, /not a member/)
  })
})

describe('raft core: snapshots', () => {
  it('installs a snapshot on a follower whose entries were compacted', () => {
    const net = new TestNet(['a', 'b', 'c'], { peers: ['a', 'b', 'c'] })
    net.campaign('a')
    net.isolate('c')
    for (let i = 0; i < 10; i++) net.propose('a', `p${i}`)
    const a = net.get('a')
    const applied = a.raw.status().applied
    a.storage.createSnapshot(applied, { voters: ['a', 'b', 'c'], learners: [] }, ctx('state'))
    a.storage.compact(applied)
    net.heal()
    net.tick('a')
    const c = net.get('c')
    assert.equal(c.storage.snapshot().metadata.index, applied)
    assert.equal(text(c.storage.snapshot().data), 'state')
    assert.ok(net.delivered.some(m => m.type === MessageType.Snap && m.to === 'c'))
    net.propose('a', 'after')
    assert.deepEqual(net.appliedTexts('c'), ['after'])
    assert.equal(c.raw.status().commit, a.raw.status().commit)
  })

  it('a node added after the last snapshot catches up from it', () => {
    const net = new TestNet(['a', 'b', 'c'], { peers: ['a', 'b', 'c'] })
    net.campaign('a')
    for (let i = 0; i < 5; i++) net.propose('a', `p${i}`)
    const a = net.get('a')
    a.storage.createSnapshot(a.raw.status().applied, { voters: ['a', 'b', 'c'], learners: [] }, ctx('s'))
    a.storage.compact(a.raw.status().applied)
    net.add('d', [], 0, { voters: [], learners: [] })
    net.get('a').raw.proposeConfChange({ type: ConfChangeType.AddNode, node: 'd' })
    net.settle()
    net.tick('a')
    net.tick('a')
    net.propose('a', 'z')
    assert.deepEqual(net.appliedTexts('d'), ['z'])
    assert.deepEqual(net.get('d').raw.status().voters.sort(), ['a', 'b', 'c', 'd'])
  })

  it('ignores a stale snapshot', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    net.propose('a', 'x')
    const b = net.get('b')
    const before = b.raw.status()
    b.raw.step({
      type: MessageType.Snap, from: 'a', to: 'b', term: before.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0),
      snapshot: { metadata: { index: 1, term: before.term, conf: { voters: ['a', 'b', 'c'], learners: [] } }, data: ctx('old') }
    })
    net.settle()
    assert.equal(b.storage.snapshot().metadata.index, 0)
    assert.equal(b.raw.status().commit, before.commit)
  })
})

describe('raft core: a member that lost its log (LOG_LOST)', () => {
  it('the leader believes a lost-log rejection below the known match and probes from there; a plain stale rejection changes nothing', () => {
    const net = new TestNet(['a', 'b', 'c'])
    net.campaign('a')
    for (let i = 0; i < 5; i++) net.propose('a', `e${i}`)
    const leader = net.get('a').raw
    const before = leader.status().progress!.c
    assert.ok(before.match >= 5)
    const term = leader.status().term
    const reject = (context: Uint8Array): void => {
      leader.step(makeMessage({ type: MessageType.AppResp, from: 'c', to: 'a', term, index: before.match, reject: true, rejectHint: 0, context }))
    }
    net.filter = m => m.to !== 'c'
    reject(new Uint8Array(0))
    net.settle()
    assert.equal(leader.status().progress!.c.match, before.match, 'a stale rejection is ignored')
    reject(LOG_LOST)
    net.settle()
    assert.equal(leader.status().progress!.c.match, 0)
    // the leader sends c its log from the start again
    const resend = net.get('a').sent.filter(m => m.to === 'c' && m.type === MessageType.App).at(-1)
    assert.equal(resend?.index, 0)
    net.heal()
    net.tickAll(3)
    assert.equal(leader.status().progress!.c.match, leader.status().lastIndex, 'c holds the whole log again')
  })
})

describe('raft core: forgetting a dead leader (etcd ForgetLeader)', () => {
  it('a follower that forgot its leader grants a pre-vote at once; one that did not refuses it within the lease', () => {
    const net = new TestNet(['a', 'b', 'c'], { preVote: true, checkQuorum: true, electionTick: 10 })
    net.campaign('a')
    assert.equal(net.role('a'), StateRole.Leader)
    net.isolate('a')
    // b campaigns at once: c heard from a lately, so it refuses
    net.campaign('b')
    assert.notEqual(net.role('b'), StateRole.Leader)
    assert.equal(net.get('c').raw.status().lead, 'a')
    // c forgets a (the host judged it dead, its lease ran out): b's next campaign wins
    net.get('c').raw.forgetLeader()
    assert.equal(net.get('c').raw.status().lead, '')
    assert.equal(net.role('c'), StateRole.Follower, 'forgetting is not campaigning')
    net.campaign('b')
    assert.equal(net.role('b'), StateRole.Leader)
  })

  it('with campaignInTicks it campaigns after that many ticks; a leader or candidate ignores it', () => {
    const net = new TestNet(['a', 'b', 'c'], { preVote: true, checkQuorum: true, electionTick: 10 })
    net.campaign('a')
    net.isolate('a')
    net.get('c').raw.forgetLeader()
    net.get('b').raw.forgetLeader(2)
    net.tick('b')
    assert.equal(net.role('b'), StateRole.Follower, 'one tick: not yet')
    net.tick('b')
    assert.equal(net.role('b'), StateRole.Leader, 'two ticks, well before an election timeout of 10')
    net.get('b').raw.forgetLeader(0)
    assert.equal(net.role('b'), StateRole.Leader, 'a leader forgets nothing')
  })
})
