import assert from 'node:assert/strict'
import { ReservationLedger, planClaims } from '../../src/topology/reservations.js'
import type { ReservationAnnouncement, ReservationItem } from '../../src/topology/reservations.js'
import { decodeAnnouncement, encodeAnnouncement, maxAnnouncementBytes } from '../../src/topology/reservations-codec.js'
import { ReservationAnnouncement as WireAnnouncement } from '../../src/wire/proto/leaders.js'
import { place } from '../../src/topology/placement.js'
import { appUsage, capacityFor } from '../../src/topology/placement-accounting.js'
import type { NodeCapacity } from '../../src/topology/types.js'
import { prng } from '../support/prng.js'

const MiB = 2 ** 20
const T0 = 1_700_000_000_000
const node = (id: string, memoryMiB: number, cells = 100): NodeCapacity => ({ id, contributed: { cpu: 2, memory: memoryMiB * MiB, cells }, alive: true })
const item = (id: string, nodeId: string, memoryMiB: number, since: number, cells = 1): ReservationItem => ({ id, node: nodeId, memory: memoryMiB * MiB, cells, since })
const ann = (app: string, items: ReservationItem[], version = 1, term = 1, ttlMs = 30_000): ReservationAnnouncement => ({ app, term, version, ttlMs, items })
const states = (l: ReservationLedger, nodes: NodeCapacity[], now: number): string[] =>
  l.evaluate(nodes, now).map(s => `${s.app}/${s.item.id}:${s.state}`)

describe('topology/reservations', () => {
  const nodes = [node('n1', 1000)]

  it('two concurrent claims exceeding one node: exactly one wins, whatever the arrival order', () => {
    const a = ann('alpha', [item('a1', 'n1', 600, T0 + 10)])
    const b = ann('beta', [item('b1', 'n1', 600, T0 + 12)])
    const l1 = new ReservationLedger()
    const l2 = new ReservationLedger()
    assert.deepEqual(l1.apply(a, T0 + 20), { accepted: true })
    assert.deepEqual(l1.apply(b, T0 + 40), { accepted: true })
    assert.deepEqual(l2.apply(b, T0 + 15), { accepted: true })
    assert.deepEqual(l2.apply(a, T0 + 900), { accepted: true })
    const settled = T0 + 5000
    assert.deepEqual(states(l1, nodes, settled), ['alpha/a1:effective', 'beta/b1:rejected'])
    assert.deepEqual(states(l2, nodes, settled), ['alpha/a1:effective', 'beta/b1:rejected'])
  })

  it('breaks a tie in time by app name', () => {
    const l = new ReservationLedger()
    l.apply(ann('zeta', [item('z', 'n1', 600, T0)]), T0)
    l.apply(ann('eta', [item('e', 'n1', 600, T0)]), T0)
    assert.deepEqual(states(l, nodes, T0 + 5000), ['eta/e:effective', 'zeta/z:rejected'])
  })

  it('is settling until visible for the settle period, then effective', () => {
    const l = new ReservationLedger({ settleMs: 2500, maxSkewMs: 1000 })
    l.apply(ann('alpha', [item('a1', 'n1', 100, T0)]), T0)
    assert.deepEqual(states(l, nodes, T0 + 2499), ['alpha/a1:settling'])
    assert.deepEqual(states(l, nodes, T0 + 2500), ['alpha/a1:effective'])
    assert.throws(() => new ReservationLedger({ settleMs: 1000, maxSkewMs: 500 }), /settleMs must exceed 2 × maxSkewMs/)
  })

  it('settles the items of the first announcement seen of an app by their age: a restarted node waits no settle period on old room, and the whole one on a new claim', () => {
    const l = new ReservationLedger({ settleMs: 2500, maxSkewMs: 1000 })
    // restarted at T0: the app's first announcement holds room claimed a minute ago and a claim made now
    l.apply(ann('alpha', [item('old', 'n1', 100, T0 - 60_000), item('new', 'n1', 100, T0)]), T0)
    assert.deepEqual(states(l, nodes, T0), ['alpha/old:effective', 'alpha/new:settling'])
    assert.deepEqual(states(l, nodes, T0 + 2499), ['alpha/old:effective', 'alpha/new:settling'])
    assert.deepEqual(states(l, nodes, T0 + 2500), ['alpha/old:effective', 'alpha/new:effective'])
    // an item claimed 2 s ago counts as seen 1 s ago (the skew allowed): effective 1.5 s from now
    const m = new ReservationLedger({ settleMs: 2500, maxSkewMs: 1000 })
    m.apply(ann('beta', [item('b', 'n1', 100, T0 - 2000)]), T0)
    assert.deepEqual(states(m, nodes, T0 + 1499), ['beta/b:settling'])
    assert.deepEqual(states(m, nodes, T0 + 1500), ['beta/b:effective'])
    // a new item in a later announcement is seen now, whatever its since
    m.apply(ann('beta', [item('b', 'n1', 100, T0 - 2000), item('c', 'n1', 100, T0 + 100)], 2), T0 + 200)
    assert.deepEqual(states(m, nodes, T0 + 2699), ['beta/b:effective', 'beta/c:settling'])
  })

  it('never displaces an effective item: not by a shrink that frees room for a rejected one', () => {
    const l = new ReservationLedger()
    const big = ann('alpha', [item('a1', 'n1', 600, T0)])
    l.apply(big, T0)
    l.apply(ann('beta', [item('b1', 'n1', 600, T0 + 100)]), T0 + 100)
    l.apply(ann('gamma', [item('c1', 'n1', 400, T0 + 200)]), T0 + 200)
    assert.deepEqual(states(l, nodes, T0 + 5000), ['alpha/a1:effective', 'beta/b1:rejected', 'gamma/c1:effective'])
    // alpha shrinks: beta (ordered before gamma) would now fit in a fresh walk, but gamma runs
    l.apply(ann('alpha', [item('a1', 'n1', 100, T0)], 2), T0 + 6000)
    assert.deepEqual(states(l, nodes, T0 + 6000), ['alpha/a1:effective', 'beta/b1:rejected', 'gamma/c1:effective'])
    // once alpha goes entirely, beta fits next to gamma
    l.apply(ann('alpha', [], 3), T0 + 7000)
    assert.deepEqual(states(l, nodes, T0 + 7000), ['beta/b1:effective', 'gamma/c1:effective'])
  })

  it('refuses stale and replayed announcements, and accepts a new leader\'s', () => {
    const l = new ReservationLedger()
    assert.equal(l.apply(ann('alpha', [item('a1', 'n1', 100, T0)], 5, 2), T0).accepted, true)
    assert.match((l.apply(ann('alpha', [], 5, 2), T0 + 1) as { reason: string }).reason, /stale announcement \(term 2, version 5; have term 2, version 5\)/)
    assert.equal(l.apply(ann('alpha', [], 9, 1), T0 + 1).accepted, false)
    assert.equal(l.apply(ann('alpha', [item('a1', 'n1', 100, T0)], 1, 3), T0 + 2).accepted, true, 'higher term, version restarts')
    assert.deepEqual(states(l, nodes, T0 + 2), ['alpha/a1:settling'])
  })

  it('refuses backdated or future new items, grown items and moved items, whole', () => {
    const l = new ReservationLedger({ maxSkewMs: 1000, settleMs: 2500 })
    assert.equal(l.apply(ann('alpha', [item('old', 'n1', 100, T0 - 60_000)]), T0).accepted, true, 'baseline: first announcement seen')
    const back = l.apply(ann('alpha', [item('old', 'n1', 100, T0 - 60_000), item('new', 'n1', 100, T0 - 5000)], 2), T0)
    assert.match((back as { reason: string }).reason, /new item new has since .*5000 ms from this node's clock/)
    assert.equal(l.apply(ann('alpha', [item('old', 'n1', 100, T0 - 60_000), item('new', 'n1', 100, T0 + 5000)], 2), T0).accepted, false)
    assert.match((l.apply(ann('alpha', [item('old', 'n1', 200, T0 - 60_000)], 2), T0) as { reason: string }).reason, /item old grew/)
    assert.match((l.apply(ann('alpha', [item('old', 'n1', 100, T0 - 1000)], 2), T0) as { reason: string }).reason, /changed its node or since/)
    assert.match((l.apply(ann('alpha', [item('old', 'n2', 100, T0 - 60_000)], 2), T0) as { reason: string }).reason, /changed its node or since/)
    // (the baseline's item, claimed a minute ago, counts as settled)
    assert.deepEqual(states(l, nodes, T0), ['alpha/old:effective'], 'nothing of the refused announcements applied')
    assert.equal(l.apply(ann('alpha', [item('old', 'n1', 50, T0 - 60_000), item('new', 'n1', 100, T0 + 500)], 2), T0).accepted, true)
  })

  it('refuses malformed announcements', () => {
    const l = new ReservationLedger()
    const bad: Array<[ReservationAnnouncement, RegExp]> = [
      [ann('Alpha', []), /app: "Alpha" is not a valid name/],
      [ann('alpha', [], -1), /term and version/],
      [ann('alpha', [], 1, 1, 0), /ttl 0 ms is out of range/],
      [ann('alpha', [], 1, 1, 10 * 60_000), /ttl .* out of range/],
      [ann('alpha', [item('x', 'n1', 1, T0), item('x', 'n1', 1, T0)]), /item x appears twice/],
      [ann('alpha', [item('', 'n1', 1, T0)]), /empty or oversized id/],
      [ann('alpha', [item('x', '', 1, T0)]), /invalid node/],
      [ann('alpha', [{ id: 'x', node: 'n1', memory: -1, cells: 1, since: T0 }]), /invalid amount/],
      [ann('alpha', [{ id: 'x', node: 'n1', memory: 0.5, cells: 1, since: T0 }]), /invalid amount/],
      [ann('alpha', [{ id: 'x', node: 'n1', memory: 0, cells: 0, since: T0 }]), /reserves nothing/],
      [ann('alpha', Array.from({ length: 5000 }, (_, i) => item(`i${i}`, 'n1', 1, T0))), /too many items/]
    ]
    for (const [a, reason] of bad) {
      const r = l.apply(a, T0)
      assert.equal(r.accepted, false)
      assert.match((r as { reason: string }).reason, reason)
    }
    assert.deepEqual(l.evaluate(nodes, T0), [])
  })

  it('lets items lapse after their ttl unless re-announced', () => {
    const l = new ReservationLedger()
    l.apply(ann('alpha', [item('a1', 'n1', 600, T0)], 1, 1, 10_000), T0)
    assert.equal(l.freeFor('beta', nodes, T0 + 9_999).get('n1')?.memory, 400 * MiB)
    l.apply(ann('alpha', [item('a1', 'n1', 600, T0)], 2, 1, 10_000), T0 + 9_000)
    assert.equal(l.freeFor('beta', nodes, T0 + 15_000).get('n1')?.memory, 400 * MiB, 're-announced')
    assert.equal(l.freeFor('beta', nodes, T0 + 19_000).get('n1')?.memory, 1000 * MiB, 'lapsed')
  })

  it('says what is free for an app: others\' admitted items count, its own and rejected ones do not', () => {
    const l = new ReservationLedger()
    const two = [node('n1', 1000, 10), node('n2', 1000, 10)]
    l.apply(ann('alpha', [item('a1', 'n1', 300, T0, 2), item('a2', 'n2', 900, T0, 1)]), T0)
    l.apply(ann('beta', [item('b1', 'n1', 200, T0 + 1, 1), item('b2', 'n2', 200, T0 + 1, 1)]), T0 + 1)
    const forGamma = l.freeFor('gamma', two, T0 + 10)
    assert.deepEqual(forGamma.get('n1'), { memory: 500 * MiB, cells: 7 })
    assert.deepEqual(forGamma.get('n2'), { memory: 100 * MiB, cells: 9 }, 'beta\'s b2 is rejected: 900 + 200 > 1000')
    assert.deepEqual(l.freeFor('alpha', two, T0 + 10).get('n1'), { memory: 800 * MiB, cells: 9 })
    assert.deepEqual(l.reservedByOthers('beta', two, T0 + 10).get('n2'), { memory: 900 * MiB, cells: 1 })
    assert.deepEqual(l.statusOf('beta', two, T0 + 10).map(s => s.state), ['settling', 'rejected'])
    assert.deepEqual(l.freeFor('x', [node('n3', 10)], T0 + 10).get('n3'), { memory: 10 * MiB, cells: 100 })
    assert.deepEqual(l.statusOf('alpha', [], T0 + 10).map(s => s.state), ['rejected', 'rejected'], 'unknown nodes admit nothing')
  })

  it('plans claims: keeps old items, adds the difference, shrinks newest first', () => {
    let n = 0
    const newId = (): string => `c${++n}`
    const wanted = new Map([['n1', { memory: 300 * MiB, cells: 3 }]])
    const first = planClaims([], wanted, T0, newId)
    assert.deepEqual(first, [item('c1', 'n1', 300, T0, 3)])
    assert.deepEqual(planClaims(first, wanted, T0 + 5, newId), first, 'no change, no new item')
    const grown = planClaims(first, new Map([['n1', { memory: 400 * MiB, cells: 3 }], ['n2', { memory: 50 * MiB, cells: 1 }]]), T0 + 10, newId)
    assert.deepEqual(grown, [item('c1', 'n1', 300, T0, 3), { id: 'c2', node: 'n1', memory: 100 * MiB, cells: 0, since: T0 + 10 }, item('c3', 'n2', 50, T0 + 10, 1)])
    const shrunk = planClaims(grown, new Map([['n1', { memory: 250 * MiB, cells: 2 }]]), T0 + 20, newId)
    assert.deepEqual(shrunk, [item('c1', 'n1', 250, T0, 2)])
  })

  it('keeps two apps placed at the same moment from oversubscribing a nearly full mesh', () => {
    const mesh = [node('n1', 300, 10), node('n2', 300, 10)]
    const desired = (app: string): Parameters<typeof place>[0]['desired'] => ({ app, cells: { c: { replicas: 2, clones: 0, memory: 64 * MiB } } })
    const ledger = new ReservationLedger()
    const claims = new Map<string, ReservationItem[]>()
    // both leaders plan against the same (empty) view and announce at the same moment
    for (const [i, app] of ['alpha', 'beta'].entries()) {
      const r = place({ desired: desired(app), current: {}, nodes: mesh, reservedByOthers: ledger.reservedByOthers(app, mesh, T0) })
      let k = 0
      claims.set(app, planClaims([], appUsage(desired(app), r.placement), T0 + i, () => `${app}${k++}`))
    }
    for (const [app, items] of claims) assert.equal(ledger.apply(ann(app, items), T0 + 5).accepted, true)
    const after = T0 + 5000
    const winners = new Set(ledger.evaluate(mesh, after).filter(s => s.state === 'effective').map(s => s.app))
    assert.deepEqual([...winners], ['alpha'])
    // each app alone fits (2 × 64MiB + 40MiB footprint per node), both do not: the loser
    // re-plans with what is left and finds no room: pending, not oversubscribed
    const retry = place({ desired: desired('beta'), current: {}, nodes: mesh, reservedByOthers: ledger.reservedByOthers('beta', mesh, after) })
    assert.equal(retry.pending.length, 2)
    for (const [id, used] of appUsage(desired('beta'), retry.placement)) {
      const cap = capacityFor(mesh.find(n => n.id === id) as NodeCapacity, ledger.reservedByOthers('beta', mesh, after).get(id))
      assert.ok(used.memory <= cap.memory && used.cells <= cap.cells)
    }
  })

  it('never admits more than a node holds, and ledgers agree whatever the arrival order (seeded)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = prng(seed)
      const mesh = Array.from({ length: rnd.int(1, 4) }, (_, i) => node(`n${i}`, rnd.int(100, 2000), rnd.int(1, 20)))
      const anns: ReservationAnnouncement[] = []
      for (let a = 0; a < rnd.int(2, 6); a++) {
        const items = Array.from({ length: rnd.int(1, 5) }, (_, i) => item(`i${i}`, rnd.pick(mesh).id, rnd.int(1, 800), T0 + rnd.int(0, 500), rnd.int(0, 5)))
        anns.push(ann(`app${a}`, items))
      }
      const l1 = new ReservationLedger()
      const l2 = new ReservationLedger()
      anns.forEach((a, i) => assert.equal(l1.apply(a, T0 + 500 + i).accepted, true))
      ;[...anns].reverse().forEach((a, i) => assert.equal(l2.apply(a, T0 + 600 + i * 37).accepted, true))
      const s1 = l1.evaluate(mesh, T0 + 10_000)
      assert.deepEqual(s1, l2.evaluate(mesh, T0 + 10_000), `seed ${seed}: ledgers disagree`)
      for (const n of mesh) {
        const admitted = s1.filter(s => s.item.node === n.id && s.state !== 'rejected')
        assert.ok(admitted.reduce((m, s) => m + s.item.memory, 0) <= n.contributed.memory, `seed ${seed}: memory oversubscribed`)
        assert.ok(admitted.reduce((m, s) => m + s.item.cells, 0) <= n.contributed.cells, `seed ${seed}: cells oversubscribed`)
      }
    }
  })
})

describe('topology/reservations wire codec', () => {
  const a = ann('alpha', [item('a1', '12D3KooWabc', 100, T0, 2), item('a2', '12D3KooWdef', 1, T0 + 1, 0)], 7, 3)

  it('round-trips', () => {
    assert.deepEqual(decodeAnnouncement(encodeAnnouncement(a)), a)
    assert.throws(() => encodeAnnouncement(ann('Bad', [])), /invalid reservation announcement: app:/)
  })

  it('refuses garbage, truncated, oversized and invalid bytes with a one-line reason', () => {
    const bytes = encodeAnnouncement(a)
    assert.throws(() => decodeAnnouncement(bytes.subarray(0, bytes.length - 3)), /^Error: invalid reservation announcement: /)
    assert.throws(() => decodeAnnouncement(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])), /invalid reservation announcement/)
    assert.throws(() => decodeAnnouncement(new Uint8Array(maxAnnouncementBytes + 1)), /bytes \(at most/)
    assert.throws(() => decodeAnnouncement(new Uint8Array(0)), /invalid reservation announcement: app:/)
    const huge = WireAnnouncement.encode({ app: 'alpha', term: 2n ** 60n, version: 1n, ttlMs: 1000, items: [] })
    assert.throws(() => decodeAnnouncement(huge), /term is too large/)
    const zeroTtl = WireAnnouncement.encode({ app: 'alpha', term: 1n, version: 1n, ttlMs: 0, items: [] })
    assert.throws(() => decodeAnnouncement(zeroTtl), /ttl 0 ms is out of range/)
    const many = WireAnnouncement.encode({ app: 'alpha', term: 1n, version: 1n, ttlMs: 1000, items: Array.from({ length: 4097 }, (_, i) => ({ id: `i${i}`, node: 'n', memory: 1n, cells: 0, since: 1n })) })
    assert.throws(() => decodeAnnouncement(many), /invalid reservation announcement/)
  })

  it('a decoded replay is refused by the ledger', () => {
    const l = new ReservationLedger()
    const bytes = encodeAnnouncement(a)
    assert.equal(l.apply(decodeAnnouncement(bytes), T0).accepted, true)
    assert.equal(l.apply(decodeAnnouncement(bytes), T0 + 1).accepted, false)
  })
})
