// Membership changes on the multi-group host: a member removed while it was away and added
// back later, restarted from its disk, or hearing a leader elected after its removal.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../src/raft/multi/raft-host.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'
import { MemoryNetwork } from '../../src/raft/transport/memory-transport.js'
import { ConfChangeType, EntryType, StateRole } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'
import { waitFor } from '../support/wait.js'
import { proposeUntilApplied } from './support/propose.js'

const NODES = ['n1', 'n2', 'n3']
const enc = new TextEncoder()
const dec = new TextDecoder()

describe('raft multi-group host: a member removed while away and added again', function () {
  this.timeout(180_000)
  let dir: string
  let net: MemoryNetwork
  const hosts = new Map<string, RaftHost>()
  const storages = new Map<string, DiskLogStorage>()
  const applied = new Map<string, string[]>()

  const apply = (node: string) => (entries: Entry[]): void => {
    for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) applied.get(node)!.push(dec.decode(e.data))
  }
  async function open (node: string, bootstrap?: string[]): Promise<void> {
    const storage = await DiskLogStorage.open(join(dir, node, 'g'))
    storages.set(node, storage)
    applied.set(node, [])
    hosts.get(node)!.addGroup('g', { storage, bootstrap, apply: apply(node), applySnapshot: () => {} })
  }
  /** a restart from the node's disk, as after kill -9: the group is opened again from its log */
  async function restart (node: string): Promise<void> {
    const host = hosts.get(node)!
    await host.stop()
    await storages.get(node)!.close()
    const fresh = new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 50 })
    hosts.set(node, fresh)
    await open(node)
    fresh.start()
  }
  const leaderOf = (among: string[]): string | undefined => among.find(n => hosts.get(n)!.status('g').role === StateRole.Leader)

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-readd-'))
    net = new MemoryNetwork()
    for (const node of NODES) {
      hosts.set(node, new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 50 }))
      await open(node, NODES)
      hosts.get(node)!.start()
    }
  })
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    for (const s of storages.values()) await s.close()
    hosts.clear()
    storages.clear()
    await rm(dir, { recursive: true, force: true })
  })

  for (const compact of [false, true]) {
    for (const when of ['as soon as its log holds the add', 'once it applied the add']) {
      it(`counts toward the quorum after a restart ${when}${compact ? ', the leader having compacted its log' : ''}`, async () => {
        const leader = await waitFor(() => leaderOf(NODES), { what: 'a leader' })
        const [away, other] = NODES.filter(n => n !== leader)
        const L = (): RaftHost => hosts.get(leaderOf([leader, other]) ?? leader)!
        net.isolate(away)
        await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.RemoveNode, node: away }) },
          () => !hosts.get(leader)!.status('g').members.includes(away) && !hosts.get(other)!.status('g').members.includes(away), `${away} removed`)
        for (let i = 0; i < 5; i++) {
          await proposeUntilApplied(() => { L().propose('g', enc.encode(`without ${i}`)) }, () => applied.get(leader)!.includes(`without ${i}`) && applied.get(other)!.includes(`without ${i}`), `without ${i}`)
        }
        if (compact) await L().snapshotAndCompact('g', enc.encode('state'))
        net.heal()
        const addedAt = (node: string): boolean => hosts.get(node)!.status('g').members.includes(away)
        await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.AddNode, node: away }) }, () => addedAt(leader) && addedAt(other), `${away} added again`)
        if (when === 'once it applied the add') await waitFor(() => addedAt(away), { what: `${away} applies its own addition` })
        else await waitFor(() => hosts.get(away)!.status('g').commit > 0 || storages.get(away)!.lastIndex() > 0, { what: `${away} hears from the group` })
        await restart(away)
        // as in a mesh at rest: the group goes quiet before the next fault
        await waitFor(() => NODES.every(n => hosts.get(n)!.status('g').quiesced), { what: 'the group quiet', timeout: 60_000 })
        // the other member goes away: only the re-added one can make a quorum with the leader
        net.isolate(other)
        const leaderNow = await waitFor(() => leaderOf([leader, away]), { what: `a leader among ${leader} and ${away}`, timeout: 60_000 })
        await proposeUntilApplied(() => { hosts.get(leaderOf([leader, away]) ?? leaderNow)!.propose('g', enc.encode('after')) },
          () => [leader, away].some(n => applied.get(n)!.includes('after')),
          'a commit with the re-added member', 60_000)
      })
    }
  }
})

describe('raft multi-group host: a member added back after a leader it never knew was elected', function () {
  this.timeout(180_000)
  let dir: string
  let net: MemoryNetwork
  const hosts = new Map<string, RaftHost>()
  const storages: DiskLogStorage[] = []
  const applied = new Map<string, string[]>()
  /** the members the app's newest signed announcement lists (the leader's view) */
  let announced: string[] = []

  async function open (node: string, bootstrap?: string[]): Promise<void> {
    const storage = await DiskLogStorage.open(join(dir, node, 'g'))
    storages.push(storage)
    applied.set(node, [])
    hosts.get(node)!.addGroup('g', {
      storage,
      bootstrap,
      apply: entries => { for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) applied.get(node)!.push(dec.decode(e.data)) }
    })
  }
  function host (node: string): RaftHost {
    const h = new RaftHost({ transport: net.transport(node) }, {
      self: node,
      tickMs: 50,
      // a node the group added hosts it from its first message (app-groups.ts)
      onUnknownGroup: group => { if (group === 'g' && !hosts.get(node)!.hasGroup('g')) void open(node) },
      admits: (_group, from) => announced.includes(from)
    })
    hosts.set(node, h)
    return h
  }
  const leaderOf = (among: string[]): string | undefined => among.find(n => hosts.get(n)!.hasGroup('g') && hosts.get(n)!.status('g').role === StateRole.Leader)
  const membersAt = (node: string): string[] => hosts.get(node)!.status('g').members.slice().sort()

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-readd4-'))
    net = new MemoryNetwork()
  })
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    for (const s of storages.splice(0)) await s.close()
    hosts.clear()
    await rm(dir, { recursive: true, force: true })
  })

  it('hears that leader as the app\'s announcement lists it, and counts toward the quorum (its log\'s members are all away; it refused the leader and never caught up: chaos seed 7, 9 s without a leader)', async () => {
    for (const node of ['n1', 'n2', 'n3', 'n4']) host(node)
    for (const node of ['n1', 'n2', 'n3']) await open(node, ['n1', 'n2', 'n3'])
    for (const h of hosts.values()) h.start()
    // a leader other than n3, which goes away first
    await waitFor(() => {
      if (leaderOf(['n3']) !== undefined) hosts.get('n3')!.transferLeadership('g', 'n1')
      return leaderOf(['n1', 'n2'])
    }, { what: 'n1 or n2 to lead', timeout: 60_000 })
    const L = (): RaftHost => hosts.get(leaderOf(['n1', 'n2', 'n4']) ?? 'n1')!
    // n3 is away: removed, n4 joins in its place; then n2 is away and removed too
    net.isolate('n3')
    await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.RemoveNode, node: 'n3' }) }, () => !membersAt('n1').includes('n3'), 'n3 removed')
    await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.AddNode, node: 'n4' }) }, () => hosts.get('n4')!.hasGroup('g') && membersAt('n4').includes('n4'), 'n4 added and caught up')
    net.isolate('n2')
    await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.RemoveNode, node: 'n2' }) }, () => !membersAt('n1').includes('n2') && !membersAt('n4').includes('n2'), 'n2 removed')
    // the leadership goes to n4, which n3 never heard of
    await waitFor(() => { if (leaderOf(['n4']) === undefined) L().transferLeadership('g', 'n4'); return leaderOf(['n4']) !== undefined }, { what: 'n4 to lead', timeout: 60_000 })
    net.heal()
    net.isolate('n2')
    await proposeUntilApplied(() => { hosts.get(leaderOf(['n1', 'n4']) ?? 'n4')!.proposeConfChange('g', { type: ConfChangeType.AddNode, node: 'n3' }) }, () => membersAt('n4').includes('n3') && membersAt('n1').includes('n3'), 'n3 added back')
    announced = membersAt('n4')
    // n1 goes away: n4 and n3 are the quorum, and every member n3's log knows is away
    net.isolate('n1')
    const committed = (): boolean => applied.get('n4')!.includes('with n3')
    await proposeUntilApplied(() => { hosts.get(leaderOf(['n4', 'n3']) ?? 'n4')!.propose('g', enc.encode('with n3')) }, committed, 'a commit that needs n3', 60_000)
    await waitFor(() => applied.get('n3')!.includes('with n3'), { what: 'n3 to catch up and apply it' })
  })
})
