// The graceful-leave loop against stand-ins for the raft host, the groups and the cell
// runtime (the real thing runs in test/node/graceful-leave.test.ts): what it waits for,
// whom it hands leadership to, and that it never waits past its deadline.
import assert from 'node:assert/strict'
import { LEAVE_SETTLE_MS, leaveGracefully } from '../../src/topology/graceful-leave.js'
import type { GracefulLeaveComponents } from '../../src/topology/graceful-leave.js'
import { AppTable } from '../../src/topology/app-table.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import { StateRole } from '../../src/raft/types.js'
import type { RaftHost } from '../../src/raft/multi/raft-host.js'
import type { AppGroups, HostedApp } from '../../src/topology/app-groups.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { createLogger } from '../../src/util/logger.js'

const SELF = 'A'

function announcement (leader: string, version: bigint, node = 'B', clones = ['C']): AppAnnouncement {
  return {
    app: 'shop', owner: 'o', leader, term: version, version, members: ['A', 'B', 'C'],
    instances: [{ address: 'shop/counter#0', node, epoch: 1n, state: 'transformed', clones, clonesReady: [] }],
    cells: [{ name: 'counter', replicas: 1, timeout: 500 }], routes: [], reverted: false
  }
}

interface World {
  role: StateRole
  leader: string
  members: string[]
  transfers: Array<string[] | string | undefined>
  local: string[]
  others: string[]
  table: AppTable
}

function components (w: World): GracefulLeaveComponents {
  const raft = {
    hasGroup: () => true,
    status: () => ({ group: 'shop~00000000', leader: w.leader, role: w.role, term: 1, commit: 1, applied: 1, members: w.members, quiesced: false }),
    transferLeadership: (_group: string, to?: string[] | string) => { w.transfers.push(to); return Array.isArray(to) ? (to[0] ?? '') : (to ?? '') }
  } as unknown as RaftHost
  const hosted = { group: 'shop~00000000', app: 'shop', state: {}, dissolved: false } as unknown as HostedApp
  const groups = { all: () => [hosted] } as unknown as AppGroups
  const runtime = { cells: () => w.local.map(address => ({ address, status: 'transformed' })) } as unknown as CellRuntime
  return { self: SELF, raft, groups, table: w.table, runtime, others: () => w.others, logger: createLogger('test') }
}

function world (over: Partial<World> = {}): World {
  return { role: StateRole.Leader, leader: SELF, members: ['A', 'B', 'C'], transfers: [], local: [], others: ['B', 'C'], table: new AppTable(), ...over }
}

describe('graceful leave: the hand-over loop', () => {
  it('hands leadership to a member that stays and returns once it leads and has announced the app', async () => {
    const w = world()
    w.table.update(announcement(SELF, 1n))
    const leaving = leaveGracefully(components(w), AbortSignal.timeout(20_000))
    await new Promise(resolve => setTimeout(resolve, 150))
    assert.deepEqual(w.transfers, [['B', 'C']], 'one transfer, to the members that stay')
    w.role = StateRole.Follower
    w.leader = 'B'
    await new Promise(resolve => setTimeout(resolve, 150))
    w.table.update(announcement('B', 2n))
    await new Promise(resolve => setTimeout(resolve, 150))
    // the new leader removes this node from the group (its advert says it is leaving)
    w.members = ['B', 'C']
    const outcome = await leaving
    assert.deepEqual(outcome, { handedOver: { shop: 'B' }, stillLeading: [], stillMember: [], stillHere: [] })
  })

  it('waits for its removal from the group once the leadership is handed over: in a group of two its vote is needed', async () => {
    const w = world({ role: StateRole.Follower, leader: 'B', members: ['A', 'B'], others: ['B'] })
    w.table.update(announcement('B', 1n, 'B', []))
    let done = false
    const leaving = leaveGracefully(components(w), AbortSignal.timeout(20_000)).finally(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, LEAVE_SETTLE_MS + 300))
    assert.equal(done, false, 'still a member')
    // removed: it may not hear so and campaign in vain, which leads nothing
    w.role = StateRole.PreCandidate
    w.leader = ''
    await new Promise(resolve => setTimeout(resolve, 150))
    assert.equal(done, false, 'a campaign after the hand-over is no leadership to hand over again')
    assert.deepEqual(w.transfers, [])
    w.members = ['B']
    assert.deepEqual(await leaving, { handedOver: { shop: 'B' }, stillLeading: [], stillMember: [], stillHere: [] })
  })

  it('removed before the announcement names the new leader: done once it does', async () => {
    const w = world({ role: StateRole.Follower, leader: '', members: ['B', 'C'] })
    w.table.update(announcement(SELF, 1n))
    let done = false
    const leaving = leaveGracefully(components(w), AbortSignal.timeout(20_000)).finally(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, LEAVE_SETTLE_MS + 300))
    assert.equal(done, false, 'no announcement of another leader yet')
    w.table.update(announcement('B', 2n))
    assert.deepEqual(await leaving, { handedOver: { shop: 'B' }, stillLeading: [], stillMember: [], stillHere: [] })
  })

  it('reports a group that still counts it as a member at its deadline', async () => {
    const w = world({ role: StateRole.Follower, leader: 'B', members: ['A', 'B'], others: ['B'] })
    w.table.update(announcement('B', 1n, 'B', []))
    const outcome = await leaveGracefully(components(w), AbortSignal.timeout(300))
    assert.deepEqual(outcome, { handedOver: { shop: 'B' }, stillLeading: [], stillMember: ['shop'], stillHere: [] })
  })

  it('waits until its cells reverted and no announcement places an instance or clone here', async () => {
    const w = world({ role: StateRole.Follower, leader: 'B', members: ['B', 'C'], local: ['shop/counter#0'] })
    w.table.update(announcement('B', 1n, SELF, ['C']))
    let done = false
    const leaving = leaveGracefully(components(w), AbortSignal.timeout(20_000)).finally(() => { done = true })
    await new Promise(resolve => setTimeout(resolve, 150))
    w.table.update(announcement('B', 2n, 'C', [SELF]))
    w.local = []
    await new Promise(resolve => setTimeout(resolve, 150))
    assert.equal(done, false, 'still listed as a clone')
    w.table.update(announcement('B', 3n, 'C', ['B']))
    assert.deepEqual((await leaving).stillHere, [])
  })

  it('leaves only once nothing was placed here for LEAVE_SETTLE_MS: a placement proposed before the leader heard may still name it', async () => {
    const w = world({ role: StateRole.Follower, leader: 'B', members: ['B', 'C'] })
    w.table.update(announcement('B', 1n, 'C', ['B']))
    let done = false
    const started = Date.now()
    const leaving = leaveGracefully(components(w), AbortSignal.timeout(20_000)).finally(() => { done = true })
    // a placement committed late names this node as a clone again, for a while
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(done, false, 'clear for 200 ms only')
    w.table.update(announcement('B', 2n, 'C', [SELF]))
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(done, false, 'placed here again')
    const moved = Date.now()
    w.table.update(announcement('B', 3n, 'C', ['B']))
    assert.deepEqual((await leaving).stillHere, [])
    assert.ok(Date.now() - moved >= LEAVE_SETTLE_MS, `left ${Date.now() - moved} ms after the last placement here moved away`)
    assert.ok(Date.now() - started >= 400 + LEAVE_SETTLE_MS)
  })

  it('does not wait when no member stays (the whole mesh stopping)', async () => {
    const w = world({ others: [], local: ['shop/counter#0'] })
    w.table.update(announcement(SELF, 1n, SELF))
    const outcome = await leaveGracefully(components(w), AbortSignal.timeout(20_000))
    assert.deepEqual(outcome, { handedOver: {}, stillLeading: [], stillMember: [], stillHere: [] })
    assert.deepEqual(w.transfers, [])
  })

  it('stops at its deadline and reports what did not move', async () => {
    const w = world({ local: ['shop/counter#0'] })
    w.table.update(announcement(SELF, 1n, SELF))
    const outcome = await leaveGracefully(components(w), AbortSignal.timeout(300))
    assert.deepEqual(outcome, { handedOver: {}, stillLeading: ['shop'], stillMember: [], stillHere: ['shop/counter#0'] })
  })
})
