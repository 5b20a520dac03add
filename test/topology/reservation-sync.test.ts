import assert from 'node:assert/strict'
import { decodeLeadersMessage, encodeAppAnnouncement, encodeReservationMessage, MAX_ANNOUNCEMENT_BYTES } from '../../src/topology/announcement.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import { AppTable } from '../../src/topology/app-table.js'
import { applyCommand, decodeCommand, encodeCommand } from '../../src/topology/app-state.js'
import type { AppState } from '../../src/topology/app-state.js'
import { itemsKey, planReservations, readyNodes, ReservationSync, signerVerdict, withRefusals } from '../../src/topology/reservation-sync.js'
import type { ReservationAnnouncement, ReservationItem } from '../../src/topology/reservations.js'
import type { NodeCapacity } from '../../src/topology/types.js'
import { LeadersMessage } from '../../src/wire/proto/apps.js'
import { createLogger } from '../../src/util/logger.js'

const MiB = 2 ** 20
const T0 = 1_700_000_000_000
const item = (id: string, node: string, cells: number, since: number, memoryMiB = 72): ReservationItem => ({ id, node, memory: memoryMiB * MiB, cells, since })
const appAnnouncement = (app: string, leader: string, term: bigint, version = 1n): AppAnnouncement => ({
  app, owner: 'owner', leader, term, version, members: ['n1', 'n2', 'n3'], instances: [], cells: [], routes: [], reverted: false
})
const node = (id: string, cells = 2): NodeCapacity => ({ id, contributed: { cpu: 1, memory: 1024 * MiB, cells }, alive: true })

describe('topology/reservation-sync', () => {
  describe('leaders messages on one topic', () => {
    const reservations: ReservationAnnouncement = { app: 'shop', term: 3, version: 7, ttlMs: 10_000, items: [item('a', 'n1', 1, T0)] }

    it('carries app announcements and reservation announcements, one per message', () => {
      assert.deepEqual(decodeLeadersMessage(encodeReservationMessage(reservations)), { kind: 'reservations', reservations })
      const app = appAnnouncement('shop', 'n1', 3n)
      assert.deepEqual(decodeLeadersMessage(encodeAppAnnouncement(app)), { kind: 'app', app })
    })

    it('refuses messages with both, neither, garbage, truncated, oversized or invalid content', () => {
      const both = LeadersMessage.encode({ app: appAnnouncement('shop', 'n1', 3n), reservations: LeadersMessage.decode(encodeReservationMessage(reservations)).reservations })
      assert.throws(() => decodeLeadersMessage(both), /both an app and reservations/)
      assert.throws(() => decodeLeadersMessage(new Uint8Array()), /neither an app nor reservations/)
      assert.throws(() => decodeLeadersMessage(new Uint8Array([0x12, 0x05, 0x01])), /invalid leaders message/)
      assert.throws(() => decodeLeadersMessage(encodeReservationMessage(reservations).subarray(0, 12)), /invalid/)
      assert.throws(() => decodeLeadersMessage(new Uint8Array(MAX_ANNOUNCEMENT_BYTES + 1)), /at most/)
      const forged = LeadersMessage.encode({ reservations: new Uint8Array([0x0a, 0x03, 0x2e, 0x2e, 0x2f]) })
      assert.throws(() => decodeLeadersMessage(forged), /invalid reservation announcement: app/)
    })
  })

  it('accepts reservations only from the app\'s leader at that term; a newer term waits for its app announcement', () => {
    const known = appAnnouncement('shop', 'n1', 3n)
    assert.equal(signerVerdict(known, 'n1', 3), 'accept')
    assert.equal(signerVerdict(known, 'n2', 3), 'refuse', 'not the leader')
    assert.equal(signerVerdict(known, 'n1', 2), 'refuse', 'a deposed term')
    assert.equal(signerVerdict(known, 'n2', 4), 'wait', 'a new leader not announced yet')
    assert.equal(signerVerdict(undefined, 'n1', 1), 'wait', 'an app not announced yet')
  })

  it('plans items from the placement, renewing committed items the ledger never saw once they are too old to be new', () => {
    let n = 0
    const newId = (): string => `new${++n}`
    const wanted = new Map([['n1', { memory: 72 * MiB, cells: 1 }], ['n2', { memory: 104 * MiB, cells: 2 }]])
    const items = [item('old', 'n1', 1, T0 - 5000), item('lost', 'n2', 1, T0 - 5000)]
    // the ledger holds `old`; `lost` was committed but never announced (its leader died)
    const planned = planReservations(items, wanted, new Set(['old']), T0, 750, newId)
    assert.deepEqual(planned, [item('old', 'n1', 1, T0 - 5000), item('new1', 'n2', 1, T0), item('new2', 'n2', 1, T0, 32)])
    // a fresh unseen item keeps its id; an app the ledger does not hold is a baseline: nothing is renewed
    assert.deepEqual(planReservations([item('fresh', 'n1', 1, T0 - 100)], new Map([['n1', { memory: 72 * MiB, cells: 1 }]]), new Set(), T0, 750, newId).map(i => i.id), ['fresh'])
    assert.deepEqual(planReservations(items, wanted, undefined, T0, 750, newId).map(i => i.id), ['old', 'lost', 'new3'])
    assert.equal(itemsKey(planned), itemsKey([...planned].reverse()))
    assert.notEqual(itemsKey(planned), itemsKey(planned.slice(1)))
  })

  it('a node is ready for an app when every one of its items there is effective', () => {
    const s = (node: string, state: string): { item: ReservationItem, state: string } => ({ item: item(`${node}-${state}`, node, 1, T0), state })
    assert.deepEqual([...readyNodes([s('n1', 'effective'), s('n2', 'effective'), s('n2', 'settling'), s('n3', 'rejected')])], ['n1'])
  })

  it('a node that refused a copy for lack of room offers the app no more than it runs there', () => {
    const nodes = [node('n1', 4), node('n2', 4)]
    const reserved = new Map([['n1', { memory: 100 * MiB, cells: 1 }]])
    const out = withRefusals(reserved, nodes, new Set(['n1']), new Map([['n1', { memory: 72 * MiB, cells: 1 }]]))
    assert.deepEqual(out.get('n1'), { memory: (1024 - 72) * MiB, cells: 3 })
    assert.equal(out.get('n2'), undefined, 'other nodes are untouched')
    // nothing runs there: the whole node is out of reach; never below what others reserved
    assert.deepEqual(withRefusals(reserved, nodes, new Set(['n1', 'n2']), new Map()).get('n2'), { memory: 1024 * MiB, cells: 4 })
    assert.deepEqual(withRefusals(new Map([['n1', { memory: 1024 * MiB, cells: 4 }]]), nodes, new Set(['n1']), new Map([['n1', { memory: 72 * MiB, cells: 1 }]])).get('n1'), { memory: 1024 * MiB, cells: 4 })
  })

  describe('the ledger of one node, fed by announcements', () => {
    let now = T0
    let table: AppTable
    let published: ReservationAnnouncement[]
    let sync: ReservationSync
    const nodes = [node('n1'), node('n2'), node('n3')]
    beforeEach(() => {
      now = T0
      table = new AppTable()
      published = []
      let n = 0
      sync = new ReservationSync({ table, nodes: () => nodes, publish: a => { published.push(a) }, logger: createLogger('test'), newId: () => `i${++n}`, now: () => now })
    })

    it('counts another leader\'s reservations once its leadership is known, and ignores a non-leader\'s', () => {
      const beta: ReservationAnnouncement = { app: 'beta', term: 2, version: 1, ttlMs: 10_000, items: [item('b1', 'n1', 2, now)] }
      sync.receive({ ...beta, items: [item('x', 'n2', 2, now)] }, 'n3')
      sync.receive(beta, 'n2')
      assert.equal(sync.reservedByOthers('alpha').size, 0, 'nothing counts before the app table knows beta\'s leader')
      const known = appAnnouncement('beta', 'n2', 2n)
      table.update(known)
      sync.learned(known)
      assert.deepEqual([...sync.reservedByOthers('alpha')], [['n1', { memory: 72 * MiB, cells: 2 }]], 'the waiting announcement of the leader counts')
      assert.equal(sync.reservedByOthers('beta').size, 0, 'an app\'s own items are not reserved against it')
      sync.receive({ ...beta, version: 2, items: [item('y', 'n3', 2, now)] }, 'n3')
      assert.deepEqual([...sync.reservedByOthers('alpha').keys()], ['n1'], 'a non-leader cannot change them')
    })

    it('as leader: announces on change, on a new term and every ttl/3; its cells start once its items are effective', () => {
      const items = [item('a1', 'n1', 1, now)]
      sync.announce('alpha', 1, items)
      sync.announce('alpha', 1, items)
      assert.equal(published.length, 1, 'unchanged items are not announced again at once')
      now += 3400
      sync.announce('alpha', 1, items)
      assert.equal(published.length, 2, 'announced again after ttl/3')
      assert.ok(published[1].version > published[0].version)
      sync.announce('alpha', 2, items)
      assert.equal(published.length, 3, 'a new term announces at once')
      assert.deepEqual(published.map(p => p.items), [items, items, items])
      assert.deepEqual([...sync.readyNodes('alpha')], ['n1'], 'settled after 3.4 s')
      now += 10
      sync.announce('alpha', 2, [...items, item('a2', 'n2', 1, now)])
      assert.deepEqual([...sync.readyNodes('alpha')], ['n1'], 'a new item settles first')
      now += 2500
      assert.deepEqual([...sync.readyNodes('alpha')].sort(), ['n1', 'n2'])
    })

    it('two leaders claiming the last slot of a node: the later claim is rejected and the loser places around the winner', () => {
      const full = [node('n1', 1)]
      const s = new ReservationSync({ table, nodes: () => full, publish: () => {}, logger: createLogger('test'), newId: () => 'z', now: () => now })
      table.update(appAnnouncement('beta', 'n2', 1n))
      s.announce('alpha', 1, [item('a1', 'n1', 1, now)])
      s.receive({ app: 'beta', term: 1, version: 1, ttlMs: 10_000, items: [item('b1', 'n1', 1, now + 5)] }, 'n2')
      now += 2600
      assert.deepEqual([...s.readyNodes('alpha')], ['n1'])
      assert.deepEqual(s.ledger.statusOf('beta', full, now).map(x => x.state), ['rejected'])
      assert.equal(s.reservedByOthers('beta').get('n1')?.cells, 1, 'beta sees alpha holding the node')
      assert.equal(s.reservedByOthers('alpha').size, 0, 'a rejected item holds nothing')
      // if the node refuses beta anyway (ledgers that disagreed), beta's leader places around it for one ttl
      s.noteRefusal('beta', 'n1')
      assert.equal(s.reservedByOthers('beta', new Map()).get('n1')?.cells, 1)
      s.announce('alpha', 1, [])
      assert.equal(s.reservedByOthers('beta', new Map()).get('n1')?.cells, 1, 'even once alpha gave the node up')
      now += s.ttlMs
      assert.equal(s.reservedByOthers('beta', new Map()).size, 0, 'the refusal lapsed after one ttl')
    })
  })

  it('the replicated state keeps the reservations committed with a placement; a whole-app revert drops them', () => {
    const owner = { id: 'p', owner: 'o', ownerKey: 'k', at: 1 }
    const manifest = { app: 'shop', cells: { counter: { code: './c.js', bundle: 'b'.repeat(64), replicas: 1, clones: 0, memory: 16 * MiB, timeout: 100, mailbox: 10 } }, routes: [] }
    let state = applyCommand(undefined, { ...owner, kind: 'publish', manifest } as never).state as AppState
    assert.deepEqual(state.reservations, [])
    const items = [item('a1', 'n1', 1, T0)]
    const placed = applyCommand(state, { id: 'x', kind: 'place', placement: { counter: [{ primary: 'n1', clones: [] }] }, reservations: items })
    assert.equal(placed.result.changed, true)
    state = placed.state as AppState
    assert.deepEqual(state.reservations, items)
    assert.equal(applyCommand(state, { id: 'y', kind: 'place', placement: state.placement, reservations: items }).result.changed, false)
    assert.deepEqual(applyCommand(state, { id: 'y', kind: 'place', placement: state.placement }).state?.reservations, items, 'absent = unchanged')
    assert.deepEqual(applyCommand(state, { ...owner, at: 2, kind: 'revert' }).state?.reservations, [])
    const cmd = { id: 'z', kind: 'place' as const, placement: {}, reservations: items }
    assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd)
    assert.throws(() => decodeCommand(new TextEncoder().encode(JSON.stringify({ ...cmd, reservations: [{ id: 'a', node: 'n1', memory: 'lots', cells: 1, since: 1 }] }))), /malformed reservations/)
    assert.throws(() => decodeCommand(new TextEncoder().encode(JSON.stringify({ ...cmd, reservations: 'all' }))), /malformed reservations/)
  })
})
