import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../src/raft/multi/raft-host.js'
import { BatchBuilder, decodeBatch } from '../../src/raft/multi/raft-batch.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'
import { MemoryNetwork } from '../../src/raft/transport/memory-transport.js'
import { encodeConfChange, makeMessage } from '../../src/raft/core/index.js'
import { ConfChangeType, EntryType, MessageType, StateRole } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'
import * as pb from '../../src/wire/proto/raft.js'
import { waitFor } from '../support/wait.js'
import { proposeUntilApplied } from './support/propose.js'

const NODES = ['n1', 'n2', 'n3']
const enc = new TextEncoder()
const dec = new TextDecoder()

interface Cluster {
  net: MemoryNetwork
  hosts: Map<string, RaftHost>
  applied: Map<string, string[]> // `${node}/${group}` -> applied commands
  storages: DiskLogStorage[]
  unknown: Array<{ group: string, from: string }>
}

describe('raft multi-group host', function () {
  this.timeout(120_000)
  let dir: string
  let cluster: Cluster

  async function startCluster (groups: string[]): Promise<Cluster> {
    const net = new MemoryNetwork()
    const c: Cluster = { net, hosts: new Map(), applied: new Map(), storages: [], unknown: [] }
    for (const node of NODES) {
      const host = new RaftHost({ transport: net.transport(node) }, {
        self: node,
        tickMs: 50,
        onUnknownGroup: (group, from) => { c.unknown.push({ group, from }) }
      })
      c.hosts.set(node, host)
      for (const group of groups) {
        const storage = await DiskLogStorage.open(join(dir, node, group))
        c.storages.push(storage)
        const key = `${node}/${group}`
        c.applied.set(key, [])
        host.addGroup(group, {
          storage,
          bootstrap: NODES,
          apply: (entries: Entry[]) => {
            for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) c.applied.get(key)!.push(dec.decode(e.data))
          }
        })
      }
      host.start()
    }
    return c
  }

  function leaderOf (group: string, among = NODES): string | undefined {
    for (const node of among) {
      const host = cluster.hosts.get(node)!
      if (host.hasGroup(group) && host.status(group).role === StateRole.Leader) return node
    }
    return undefined
  }

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-raft-multi-')) })
  afterEach(async () => {
    for (const host of cluster?.hosts.values() ?? []) await host.stop()
    for (const s of cluster?.storages ?? []) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('elects a leader and commits in each of 60 groups across 3 nodes, batching messages per peer', async () => {
    const groups = Array.from({ length: 60 }, (_, i) => `app-${i}`)
    cluster = await startCluster(groups)
    await waitFor(() => groups.every(g => leaderOf(g) !== undefined), { what: 'a leader in every group', timeout: 60_000 })
    await Promise.all(groups.map(async g => {
      await proposeUntilApplied(() => cluster.hosts.get(leaderOf(g)!)!.propose(g, enc.encode(`hello ${g}`)),
        () => NODES.every(n => cluster.applied.get(`${n}/${g}`)!.includes(`hello ${g}`)), `hello ${g} applied on every node`)
    }))
    for (const host of cluster.hosts.values()) {
      const s = host.stats
      // one frame carries messages of many groups: far fewer frames than messages (liveness beacons carry none)
      const frames = s.framesSent - s.livenessBeacons
      assert.ok(frames * 5 < s.messagesSent, `frames ${frames} vs messages ${s.messagesSent}`)
      assert.ok(s.heartbeatsCoalesced > 0)
      assert.equal(s.rejectedMessages, 0)
      assert.equal(s.malformedBatches, 0)
    }
  })

  it('elects a new leader when the leader is cut off, and the old one rejoins as follower', async () => {
    cluster = await startCluster(['solo'])
    const first = await waitFor(() => leaderOf('solo'), { what: 'first leader' })
    const term = cluster.hosts.get(first)!.status('solo').term
    cluster.net.isolate(first)
    const rest = NODES.filter(n => n !== first)
    await waitFor(() => leaderOf('solo', rest), { what: 'new leader among the others' })
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('solo', rest)!)!.propose('solo', enc.encode('after failover')),
      () => rest.every(n => cluster.applied.get(`${n}/solo`)!.includes('after failover')), 'commit after failover')
    const newTerm = cluster.hosts.get(leaderOf('solo', rest)!)!.status('solo').term
    assert.ok(newTerm > term)
    cluster.net.heal()
    await waitFor(() => cluster.applied.get(`${first}/solo`)!.includes('after failover'), { what: 'old leader catches up' })
    // the stale leader learned the new term and follows (pre-vote kept it from campaigning while cut off)
    await waitFor(() => cluster.hosts.get(first)!.status('solo').role === StateRole.Follower, { what: 'old leader follows' })
    assert.ok(cluster.hosts.get(first)!.status('solo').term >= newTerm)
  })

  it('counts and drops messages for unknown groups, from non-members and malformed batches, without state change', async () => {
    cluster = await startCluster(['g'])
    const leader = await waitFor(() => leaderOf('g'), { what: 'leader' })
    const host = cluster.hosts.get(leader)!
    const before = host.status('g')
    // an outsider joins the network and speaks
    const outsider = cluster.net.transport('mallory')
    outsider.setReceiver({ onBatch: () => {}, onUnreachable: () => {} })
    const forged = new BatchBuilder()
    forged.add('g', makeMessage({ type: MessageType.Vote, to: leader, term: before.term + 1000, logTerm: before.term + 1000, index: 1e6 }))
    forged.add('g', makeMessage({ type: MessageType.App, to: leader, term: before.term + 1000, index: 0, logTerm: 0, entries: [{ term: before.term + 1000, index: 1, type: EntryType.Normal, data: enc.encode('evil') }] }))
    forged.add('nope', makeMessage({ type: MessageType.Heartbeat, to: leader, term: 5 }))
    assert.ok(outsider.send(leader, forged.encode()))
    assert.ok(outsider.send(leader, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2])))
    // a member sends a malformed message (entries in a vote)
    const member = NODES.find(n => n !== leader)!
    const bad = pb.RaftBatch.encode({ groups: [{ group: 'g', messages: [{ type: MessageType.Vote, term: before.term + 1, logTerm: 0, index: 0, entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array(0) }], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0) }] }], heartbeats: [], heartbeatResponses: [] })
    cluster.net.transport(member).send(leader, bad)
    await waitFor(() => host.stats.rejectedMessages >= 3 && host.stats.malformedBatches >= 1 && host.stats.unknownGroupMessages >= 1, { what: 'rejections counted' })
    assert.deepEqual(cluster.unknown.filter(u => u.from === 'mallory'), [{ group: 'nope', from: 'mallory' }])
    const after = host.status('g')
    assert.equal(after.role, StateRole.Leader)
    assert.equal(after.term, before.term)
    assert.ok(!cluster.applied.get(`${leader}/g`)!.includes('evil'))
  })

  it('accepts messages from a node whose addition it holds in its log but has not applied yet', async () => {
    // A follower that persisted "add n4" but never learned its commit must still hear n4:
    // n4 may lead by then, and only n4 can tell it the commit that adds n4.
    const storage = await DiskLogStorage.open(join(dir, 'n2', 'g'))
    const conf = (i: number, node: string): Entry => ({ term: 1, index: i, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddNode, node }) })
    storage.append([conf(1, 'n1'), conf(2, 'n2'), conf(3, 'n3'), conf(4, 'n4')])
    storage.setConfState({ voters: ['n1', 'n2', 'n3'], learners: [] })
    storage.setHardState({ term: 1, vote: '', commit: 3 })
    await storage.sync()
    const net = new MemoryNetwork()
    const host = new RaftHost({ transport: net.transport('n2') }, { self: 'n2', tickMs: 50 })
    cluster = { net, hosts: new Map([['n2', host]]), applied: new Map(), storages: [storage], unknown: [] }
    host.addGroup('g', { storage, applied: 3 })
    host.start()
    const speak = (from: string): void => {
      const t = net.transport(from)
      t.setReceiver({ onBatch: () => {}, onUnreachable: () => {} })
      const b = new BatchBuilder()
      b.add('g', makeMessage({ type: MessageType.App, to: 'n2', term: 2, index: 4, logTerm: 1, commit: 4, entries: [] }))
      assert.ok(t.send('n2', b.encode()))
    }
    speak('mallory')
    await waitFor(() => host.stats.rejectedMessages === 1, { what: 'the outsider refused' })
    speak('n4')
    await waitFor(() => host.status('g').commit === 4, { what: 'n2 learns the commit from n4' })
    assert.equal(host.stats.rejectedMessages, 1)
    assert.deepEqual(host.status('g').members.sort(), ['n1', 'n2', 'n3', 'n4'])
  })

  it('compacts the leader log and catches a lagging follower up with a snapshot', async () => {
    cluster = await startCluster(['s'])
    const snapshots: string[] = []
    const leader = await waitFor(() => leaderOf('s'), { what: 'leader' })
    const lagging = NODES.find(n => n !== leader)!
    cluster.net.isolate(lagging)
    const others = NODES.filter(n => n !== lagging)
    for (let i = 0; i < 30; i++) {
      await proposeUntilApplied(() => cluster.hosts.get(leaderOf('s', others)!)!.propose('s', enc.encode(`c${i}`)),
        () => others.every(n => cluster.applied.get(`${n}/s`)!.includes(`c${i}`)), `c${i} committed without the lagging follower`)
    }
    const host = cluster.hosts.get(leaderOf('s', others)!)!
    const leaderName = NODES[[...cluster.hosts.values()].indexOf(host)]
    // the state machine's state is the list of applied commands
    const state = JSON.stringify(cluster.applied.get(`${leaderName}/s`))
    const snap = await host.snapshotAndCompact('s', enc.encode(state))
    assert.ok(snap.metadata.index >= 30)
    // the lagging node learns about snapshots through its group's callback
    const laggingHost = cluster.hosts.get(lagging)!
    await laggingHost.removeGroup('s')
    await cluster.storages.find(st => st.dir === join(dir, lagging, 's'))!.close()
    const storage = await DiskLogStorage.open(join(dir, lagging, 's'))
    cluster.storages.push(storage)
    laggingHost.addGroup('s', {
      storage,
      applySnapshot: (s) => { snapshots.push(dec.decode(s.data)) },
      apply: (entries) => { for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) cluster.applied.get(`${lagging}/s`)!.push(dec.decode(e.data)) }
    })
    cluster.net.heal()
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('s')!)!.propose('s', enc.encode('after snapshot')),
      () => cluster.applied.get(`${lagging}/s`)!.includes('after snapshot'), 'lagging follower applies the entry after the snapshot')
    assert.deepEqual(snapshots, [state])
    assert.ok(!cluster.applied.get(`${lagging}/s`)!.includes('c0'), 'compacted entries came in the snapshot, not one by one')
  })

  it('removes a group whose storage fails, reporting it, while other groups go on', async () => {
    cluster = await startCluster(['ok', 'doomed'])
    await waitFor(() => leaderOf('ok') !== undefined && leaderOf('doomed') !== undefined, { what: 'leaders' })
    const host = cluster.hosts.get('n1')!
    const errors: string[] = []
    host.addEventListener('group-error', (evt) => { errors.push(`${evt.detail.group}: ${evt.detail.error.message}`) })
    await cluster.storages.find(s => s.dir === join(dir, 'n1', 'doomed'))!.close()
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('doomed')!)!.propose('doomed', enc.encode('x')), () => !host.hasGroup('doomed'), 'failed group removed')
    assert.match(errors[0], /^doomed: .*storage is closed/)
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('ok')!)!.propose('ok', enc.encode('still fine')),
      () => cluster.applied.get('n1/ok')!.includes('still fine'), 'other group keeps working')
  })

  it('removes a group whose state machine throws on apply, while the node goes on', async () => {
    cluster = await startCluster(['ok'])
    await waitFor(() => leaderOf('ok'), { what: 'leader' })
    const host = cluster.hosts.get('n2')!
    const errors: string[] = []
    host.addEventListener('group-error', (evt) => { errors.push(`${evt.detail.group}: ${evt.detail.error.message}`) })
    for (const node of NODES) {
      const storage = await DiskLogStorage.open(join(dir, node, 'fragile'))
      cluster.storages.push(storage)
      cluster.hosts.get(node)!.addGroup('fragile', {
        storage,
        bootstrap: NODES,
        apply: (entries) => { if (node === 'n2' && entries.some(e => dec.decode(e.data) === 'poison')) throw new Error('cannot apply poison') }
      })
    }
    await waitFor(() => leaderOf('fragile'), { what: 'leader of the fragile group' })
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('fragile')!)!.propose('fragile', enc.encode('poison')), () => !host.hasGroup('fragile'), 'n2 drops the group')
    assert.deepEqual(errors, ['fragile: cannot apply poison'])
    await proposeUntilApplied(() => cluster.hosts.get(leaderOf('ok')!)!.propose('ok', enc.encode('fine')),
      () => cluster.applied.get('n2/ok')!.includes('fine'), 'other group on n2 keeps working')
  })

  it('adds and removes groups at runtime', async () => {
    cluster = await startCluster([])
    for (const node of NODES) {
      const storage = await DiskLogStorage.open(join(dir, node, 'late'))
      cluster.storages.push(storage)
      cluster.hosts.get(node)!.addGroup('late', { storage, bootstrap: NODES })
    }
    await waitFor(() => leaderOf('late'), { what: 'leader of a group added at runtime' })
    for (const node of NODES) await cluster.hosts.get(node)!.removeGroup('late')
    assert.equal(cluster.hosts.get('n1')!.hasGroup('late'), false)
    assert.throws(() => cluster.hosts.get('n1')!.propose('late', enc.encode('x')), /not hosted/)
  })
})

describe('raft batch codec', () => {
  it('coalesces plain heartbeats and restores them with the authenticated sender', () => {
    const b = new BatchBuilder()
    b.add('a', makeMessage({ type: MessageType.Heartbeat, from: 'x', to: 'y', term: 3, commit: 7 }))
    b.add('b', makeMessage({ type: MessageType.HeartbeatResp, from: 'x', to: 'y', term: 4 }))
    b.add('a', makeMessage({ type: MessageType.App, from: 'x', to: 'y', term: 3, index: 7, logTerm: 3, commit: 7, entries: [{ term: 3, index: 8, type: EntryType.Normal, data: enc.encode('d') }] }))
    assert.equal(b.coalesced, 2)
    const out = decodeBatch(b.encode(), 'x', 'y')
    assert.equal(out.length, 3)
    const hb = out.find(o => o.message.type === MessageType.Heartbeat)!
    assert.deepEqual([hb.group, hb.message.from, hb.message.to, hb.message.term, hb.message.commit], ['a', 'x', 'y', 3, 7])
    const app = out.find(o => o.message.type === MessageType.App)!
    assert.equal(dec.decode(app.message.entries[0].data), 'd')
  })

  it('refuses malformed, truncated and oversized batches with one-line errors', () => {
    const b = new BatchBuilder()
    b.add('a', makeMessage({ type: MessageType.App, from: 'x', to: 'y', term: 3, entries: [{ term: 3, index: 1, type: EntryType.Normal, data: enc.encode('payload') }] }))
    const bytes = b.encode()
    assert.throws(() => decodeBatch(bytes.subarray(0, bytes.length - 3), 'x', 'y'), /^Error: malformed raft batch/)
    assert.throws(() => decodeBatch(new Uint8Array([0x0a, 0xff]), 'x', 'y'), /malformed raft batch/)
    const unknownEntryType = pb.RaftBatch.encode({ groups: [{ group: 'a', messages: [{ type: 3, term: 1, logTerm: 0, index: 0, entries: [{ term: 1, index: 1, type: 9, data: new Uint8Array(0) }], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0) }] }], heartbeats: [], heartbeatResponses: [] })
    assert.throws(() => decodeBatch(unknownEntryType, 'x', 'y'), /unknown raft entry type 9/)
    const many = pb.RaftBatch.encode({ groups: [], heartbeats: Array.from({ length: 100_001 }, () => ({ group: '', term: 0, commit: 0, context: new Uint8Array(0), quiesce: false })), heartbeatResponses: [] })
    assert.throws(() => decodeBatch(many, 'x', 'y'), /malformed raft batch/)
  })
})

describe('raft multi-group host: quiescence', function () {
  this.timeout(120_000)
  let dir: string
  const hosts: RaftHost[] = []
  const storages: DiskLogStorage[] = []
  let net: MemoryNetwork
  const applied = new Map<string, string[]>()

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-quiet-'))
    net = new MemoryNetwork()
    for (const node of NODES) {
      const host = new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 50 })
      hosts.push(host)
      for (let i = 0; i < 20; i++) {
        const group = `q${i}`
        const storage = await DiskLogStorage.open(join(dir, node, group))
        storages.push(storage)
        applied.set(`${node}/${group}`, [])
        host.addGroup(group, {
          storage,
          bootstrap: NODES,
          apply: (entries) => { for (const e of entries) if (e.data.length > 0 && e.type === EntryType.Normal) applied.get(`${node}/${group}`)!.push(dec.decode(e.data)) }
        })
      }
      host.start()
    }
  })
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.stop()
    for (const s of storages.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  const groups = Array.from({ length: 20 }, (_, i) => `q${i}`)
  const allQuiet = (among: RaftHost[]): boolean => among.every(h => groups.every(g => h.status(g).quiesced))
  /** every message sent so far is delivered and handled: a follower that went quiet answers its leader's last heartbeat only once that is persisted */
  const settled = async (): Promise<void> => {
    await waitFor(async () => {
      await Promise.all(hosts.map(async h => { await h.settled() }))
      return net.inFlight === 0 && hosts.every(h => !h.busy)
    }, { what: 'raft hosts and network settled' })
  }
  const leaderHost = (g: string, among = hosts): RaftHost | undefined => among.find(h => h.status(g).role === StateRole.Leader)

  it('idle groups stop ticking and heartbeating on every node; a proposal wakes its group', async () => {
    await waitFor(() => allQuiet(hosts), { what: 'all groups quiet on all nodes', timeout: 60_000 })
    // a few liveness beacons per peer pass; no raft messages do. On a loaded machine a late
    // beacon can make a peer look silent, which rightly wakes its groups: such a window
    // proves nothing either way, so it is measured again.
    let sentWhileQuiet: number[][] | undefined
    await waitFor(async () => {
      await settled()
      const before = hosts.map(h => h.stats.messagesSent)
      const wakesBefore = hosts.map(h => h.stats.wakes)
      const beaconsBefore = hosts.map(h => h.stats.livenessBeacons)
      const ticksBefore = hosts.map(h => h.stats.ticks)
      await waitFor(() => hosts.every((h, i) => h.stats.livenessBeacons >= beaconsBefore[i] + 8), { what: 'beacons keep flowing' })
      if (hosts.some((h, i) => h.stats.wakes !== wakesBefore[i])) {
        await waitFor(() => allQuiet(hosts), { what: 'quiet again after a wake', timeout: 60_000 })
        return false
      }
      const after = hosts.map(h => h.stats.messagesSent)
      if (after.some((n, i) => n !== before[i])) sentWhileQuiet = [before, after]
      // the tick timer sleeps between beacon rounds (one round beacons both peers) instead
      // of firing every tick: five ticks per beacon interval here
      const ticks = hosts.map((h, i) => h.stats.ticks - ticksBefore[i])
      const beacons = hosts.map((h, i) => h.stats.livenessBeacons - beaconsBefore[i])
      assert.ok(ticks.every((t, i) => t <= beacons[i] + 2), `quiet hosts ticked ${JSON.stringify(ticks)} times for ${JSON.stringify(beacons)} beacons`)
      return true
    }, { what: 'a window with no wake-up', timeout: 90_000 })
    assert.equal(sentWhileQuiet, undefined, `quiet groups sent raft messages: ${JSON.stringify(sentWhileQuiet)}`)
    const leader = leaderHost('q3')!
    await proposeUntilApplied(() => leaderHost('q3')!.propose('q3', enc.encode('wake up')),
      () => NODES.every(n => applied.get(`${n}/q3`)!.includes('wake up')), 'proposal to a quiet group applied everywhere')
    assert.ok(leader.stats.wakes >= 1)
    // and it goes quiet again
    await waitFor(() => allQuiet(hosts), { what: 'quiet again' })
  })

  it('followers of quiet groups elect a new leader when the leader node goes silent', async () => {
    await waitFor(() => allQuiet(hosts), { what: 'all groups quiet', timeout: 60_000 })
    const victim = leaderHost('q0')!
    const victimName = NODES[hosts.indexOf(victim)]
    const led = groups.filter(g => victim.status(g).role === StateRole.Leader)
    net.isolate(victimName)
    const rest = hosts.filter(h => h !== victim)
    await waitFor(() => led.every(g => leaderHost(g, rest) !== undefined), { what: 'new leaders for every group the silent node led', timeout: 60_000 })
    const g = led[0]
    await proposeUntilApplied(() => leaderHost(g, rest)!.propose(g, enc.encode('after silence')),
      () => NODES.filter(n => n !== victimName).every(n => applied.get(`${n}/${g}`)!.includes('after silence')), 'commit after the leader went silent')
    // the cut-off leader does not stay a quiet "leader": it wakes, loses check-quorum and steps down
    await waitFor(() => led.every(l => victim.status(l).role !== StateRole.Leader), { what: 'isolated old leader steps down' })
  })

  it('hands leadership of quiet groups to another member on request (graceful leave)', async () => {
    await waitFor(() => allQuiet(hosts), { what: 'all groups quiet', timeout: 60_000 })
    const leaving = leaderHost('q0')!
    const led = groups.filter(g => leaving.status(g).role === StateRole.Leader)
    const term = new Map(led.map(g => [g, leaving.status(g).term]))
    // followers cannot hand over what they do not lead
    const follower = hosts.find(h => h !== leaving)!
    assert.equal(follower.transferLeadership('q0'), '')
    assert.throws(() => leaving.transferLeadership('no-such-group'), /not hosted/)
    const chosen = new Map(led.map(g => [g, leaving.transferLeadership(g)]))
    for (const to of chosen.values()) assert.ok(NODES.includes(to) && to !== leaving.self)
    const rest = hosts.filter(h => h !== leaving)
    await waitFor(() => led.every(g => leaderHost(g, rest)?.self === chosen.get(g)), { what: 'the chosen members to lead every group the leaving node led', timeout: 30_000 })
    for (const g of led) {
      assert.notEqual(leaving.status(g).role, StateRole.Leader)
      assert.ok(leaderHost(g)!.status(g).term > term.get(g)!)
    }
    // the groups still commit under their new leaders
    const g = led[0]
    await proposeUntilApplied(() => leaderHost(g)!.propose(g, enc.encode('after transfer')),
      () => NODES.every(n => applied.get(`${n}/${g}`)!.includes('after transfer')), 'commit after the transfer')
  })
})

describe('raft multi-group host: durability before acknowledgement', function () {
  this.timeout(60_000)
  let dir: string
  const hosts: RaftHost[] = []
  const storages: DiskLogStorage[] = []
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.stop()
    for (const s of storages.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('never sends a vote or an append acknowledgement before the state it acknowledges is fsynced', async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-durable-'))
    const net = new MemoryNetwork()
    const violations: string[] = []
    let acksChecked = 0
    for (const node of NODES) {
      const storage = await DiskLogStorage.open(join(dir, node))
      storages.push(storage)
      // what is durable: captured when a sync starts, published when it completes
      const durable = { lastIndex: 0, vote: '', term: 0 }
      const sync = storage.sync.bind(storage)
      storage.sync = async () => {
        const pending = { lastIndex: storage.lastIndex(), vote: storage.initialState().hardState.vote, term: storage.initialState().hardState.term }
        await sync()
        Object.assign(durable, pending)
      }
      const inner = net.transport(node)
      const transport = {
        setReceiver: inner.setReceiver,
        send: (to: string, payload: Uint8Array) => {
          for (const { message: m } of decodeBatch(payload, node, to)) {
            if (m.type === MessageType.AppResp && !m.reject) {
              acksChecked++
              if (m.index > durable.lastIndex) violations.push(`${node} acked index ${m.index} with only ${durable.lastIndex} durable`)
            }
            if ((m.type === MessageType.VoteResp) && !m.reject) {
              acksChecked++
              if (durable.vote !== to || durable.term !== m.term) violations.push(`${node} granted a vote to ${to} in term ${m.term} before persisting it`)
            }
          }
          return inner.send(to, payload)
        }
      }
      const host = new RaftHost({ transport }, { self: node, tickMs: 20 })
      hosts.push(host)
      host.addGroup('d', { storage, bootstrap: NODES })
      host.start()
    }
    const leader = (): RaftHost => hosts.find(h => h.status('d').role === StateRole.Leader)!
    await waitFor(leader, { what: 'leader' })
    await proposeUntilApplied(() => { for (let i = 0; i < 50; i++) leader().propose('d', enc.encode(`x${i}`)) },
      () => hosts.every(h => h.status('d').applied >= 50), 'all applied')
    assert.ok(acksChecked > 3, `only ${acksChecked} acknowledgements seen`)
    assert.deepEqual(violations, [])
  })
})


describe('raft multi-group host: the leader\'s lease', function () {
  this.timeout(60_000)
  let dir: string
  const hosts = new Map<string, RaftHost>()
  const storages: DiskLogStorage[] = []
  /** per node: ms its clock is ahead of the real one (a stall: time passed while the node did not run) */
  const skew = new Map<string, number>()
  let net: MemoryNetwork

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-lease-'))
    net = new MemoryNetwork()
    for (const node of NODES) {
      skew.set(node, 0)
      const clock = {
        now: () => Date.now() + skew.get(node)!,
        setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
        clearTimeout: (handle: unknown) => { clearTimeout(handle as NodeJS.Timeout) }
      }
      const host = new RaftHost({ transport: net.transport(node), clock }, { self: node, tickMs: 50 })
      hosts.set(node, host)
      const storage = await DiskLogStorage.open(join(dir, node))
      storages.push(storage)
      host.addGroup('app', { storage, bootstrap: NODES })
      host.start()
    }
  })
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    hosts.clear()
    for (const s of storages.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  const leader = (): string | undefined => NODES.find(n => hosts.get(n)!.status('app').role === StateRole.Leader)

  it('holds only once a quorum confirmed it, and lapses on the clock: a leader woken from a stall still believes it leads, but holds no lease', async () => {
    const first = await waitFor(leader, { what: 'a leader' })
    const host = hosts.get(first)!
    assert.equal(host.leaseHolds('app'), false, 'no lease before a quorum confirmed it')
    await waitFor(async () => await host.renewLease('app'), { what: 'a quorum to confirm the leader' })
    assert.equal(host.leaseHolds('app'), true)
    // the node stalls for a second (its clock runs on, none of its timers fire)
    skew.set(first, 1000)
    assert.equal(host.status('app').role, StateRole.Leader, 'the woken leader still believes it leads')
    assert.equal(host.leaseHolds('app'), false, 'its lease lapsed during the stall')
    // followers never ask: only a leader holds a lease
    for (const n of NODES.filter(n => n !== first)) {
      assert.equal(await hosts.get(n)!.renewLease('app'), false)
      assert.equal(hosts.get(n)!.leaseHolds('app'), false)
    }
  })

  it('a leader cut off from its quorum gets no confirmation; one handing leadership over loses its lease at once', async () => {
    const first = await waitFor(leader, { what: 'a leader' })
    const host = hosts.get(first)!
    await waitFor(async () => await host.renewLease('app'), { what: 'a quorum to confirm the leader' })
    net.isolate(first)
    assert.equal(await host.renewLease('app'), false, 'no quorum answered')
    assert.equal(host.leaseHolds('app'), false)
    net.heal()
    const next = await waitFor(leader, { what: 'a leader after healing' })
    const nextHost = hosts.get(next)!
    await waitFor(async () => await nextHost.renewLease('app'), { what: 'a quorum to confirm the leader' })
    assert.notEqual(nextHost.transferLeadership('app'), '')
    assert.equal(nextHost.leaseHolds('app'), false, 'the transferee may lead at once')
  })

  it('a new leader elected while the old one is cut off gets its lease from the members that remain', async () => {
    const first = await waitFor(leader, { what: 'a leader' })
    await waitFor(() => NODES.every(n => hosts.get(n)!.status('app').quiesced), { what: 'the group to go quiet', timeout: 30_000 })
    net.isolate(first)
    const rest = NODES.filter(n => n !== first)
    const next = await waitFor(() => rest.find(n => hosts.get(n)!.status('app').role === StateRole.Leader), { what: 'a new leader among the others', timeout: 30_000 })
    await waitFor(async () => await hosts.get(next)!.renewLease('app'), { what: 'a quorum of the remaining members to confirm the new leader', timeout: 10_000 })
    net.heal()
  })

  it('a quiet group confirms its leader without waking', async () => {
    const first = await waitFor(leader, { what: 'a leader' })
    const host = hosts.get(first)!
    await waitFor(() => NODES.every(n => hosts.get(n)!.status('app').quiesced), { what: 'the group to go quiet', timeout: 30_000 })
    const wakes = host.stats.wakes
    assert.equal(await host.renewLease('app'), true)
    assert.equal(host.leaseHolds('app'), true)
    assert.equal(host.status('app').quiesced, true)
    assert.equal(host.stats.wakes, wakes)
  })
})
