import assert from 'node:assert/strict'
import { activeCells, applyCommand, decodeCommand, encodeCommand, placementBase } from '../../src/topology/app-state.js'
import { applyAll } from './support/apply-all.js'
import type { AppCommand, AppState } from '../../src/topology/app-state.js'
import type { AppManifest } from '../../src/topology/manifest.js'

const cell = (bundle: string, replicas = 1): AppManifest['cells'][string] => ({ code: './c.js', replicas, clones: 0, memory: 16 * 2 ** 20, timeout: 100, mailbox: 10, bundle })
const manifest = (cells: AppManifest['cells']): AppManifest => ({ app: 'shop', cells, routes: [] })
const alice = { owner: 'alice', ownerKey: 'a-key' }
const bob = { owner: 'bob', ownerKey: 'b-key' }
let ids = 0
const id = (): string => `c${++ids}`

const run = applyAll

describe('app state machine', () => {
  const first = manifest({ counter: cell('h1'), cart: cell('h2', 2) })
  const publish = (m: AppManifest, at: number, who = alice): AppCommand => ({ id: id(), kind: 'publish', ...who, at, manifest: m })

  it('a first publish creates the app; the same manifest again changes nothing', () => {
    const { state, results } = run([publish(first, 1), publish(structuredClone(first), 2)])
    assert.deepEqual(results.map(r => [r.ok, r.changed]), [[true, true], [true, false]])
    assert.equal(state?.owner, 'alice')
    assert.equal(state?.lastRequestAt, 2)
    assert.deepEqual(activeCells(state as AppState), ['cart', 'counter'])
  })

  it('another owner cannot publish, scale or revert the app', () => {
    const { state } = run([publish(first, 1)])
    const { state: after, results } = run([
      publish(manifest({ counter: cell('evil') }), 5, bob),
      { id: id(), kind: 'scale', ...bob, at: 6, cell: 'cart', replicas: 5 },
      { id: id(), kind: 'revert', ...bob, at: 7 }
    ], state)
    assert.ok(results.every(r => !r.ok && /belongs to owner alice/.test(r.error ?? '')))
    assert.deepEqual(after, state)
  })

  it('refuses replayed or older owner requests', () => {
    const { state } = run([publish(first, 10)])
    const { results } = run([publish(manifest({ counter: cell('h9') }), 10), { id: id(), kind: 'revert', ...alice, at: 3 }], state)
    assert.ok(results.every(r => !r.ok && /stale request/.test(r.error ?? '')))
  })

  it('refuses a placement made from a placement that has changed since (a deposed leader\'s stale proposal)', () => {
    const { state } = run([publish(first, 1), { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } }])
    const base = placementBase(state as AppState)
    // the real leader promotes the clone; a deposed one, from the old view, moves the primary elsewhere
    const fresh = { id: id(), kind: 'place' as const, base, placement: { counter: [{ primary: 'n2', clones: ['n3'] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } }
    const stale = { id: id(), kind: 'place' as const, base, placement: { counter: [{ primary: 'n4', clones: ['n3'] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } }
    const { state: after, results } = run([fresh, stale], state)
    assert.deepEqual(results.map(r => r.ok), [true, false])
    assert.match(results[1].error ?? '', /stale placement/)
    assert.deepEqual(after?.placement.counter, [{ primary: 'n2', clones: ['n3'] }])
    assert.notEqual(placementBase(after as AppState), base)
    assert.throws(() => decodeCommand(new TextEncoder().encode(JSON.stringify({ id: 'x', kind: 'place', placement: {}, base: 7 }))), /base that is not a string/)
  })

  it('placement bumps an instance epoch when its primary changes; scale and a changed manifest trim it', () => {
    const { state } = run([
      publish(first, 1),
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: [] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } },
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n3', clones: [] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } }
    ])
    assert.deepEqual(state?.epochs, { 'shop/counter#0': 2, 'shop/cart#0': 1, 'shop/cart#1': 1 })
    const scaled = run([{ id: id(), kind: 'scale', ...alice, at: 2, cell: 'cart', replicas: 1 }], state).state as AppState
    assert.equal(scaled.manifest.cells.cart.replicas, 1)
    assert.equal(scaled.placement.cart.length, 1)
    const changed = run([publish(manifest({ counter: cell('h3') }), 3)], scaled)
    assert.equal(changed.results[0].changed, true)
    assert.deepEqual(Object.keys(changed.state?.placement ?? {}), ['counter'])
    assert.equal(changed.state?.placement.counter[0].primary, 'n3', 'a code change keeps the placement')
  })

  it('a scaled-down replica and a removed cell drop their holders: added again, they start new (no wait for copies that were let go)', () => {
    const { state } = run([
      publish(first, 1),
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n1', clones: ['n2'] }, { primary: 'n3', clones: ['n4'] }] } }
    ])
    assert.deepEqual(Object.keys(state?.holders ?? {}).sort(), ['shop/cart#0', 'shop/cart#1', 'shop/counter#0'])
    const scaled = run([{ id: id(), kind: 'scale', ...alice, at: 2, cell: 'cart', replicas: 1 }], state).state as AppState
    assert.deepEqual(Object.keys(scaled.holders ?? {}).sort(), ['shop/cart#0', 'shop/counter#0'])
    // scaled up again: cart#1 is placed anew, and only its new nodes hold it
    const again = run([
      { id: id(), kind: 'scale', ...alice, at: 3, cell: 'cart', replicas: 2 },
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n1', clones: ['n2'] }, { primary: 'n5', clones: ['n2'] }] } }
    ], scaled).state as AppState
    assert.deepEqual(again.holders?.['shop/cart#1']?.map(h => h.node).sort(), ['n2', 'n5'])
    assert.ok((again.epochs['shop/cart#1'] ?? 0) > (state?.epochs['shop/cart#1'] ?? 0), 'its epoch keeps counting up (older copies stay older)')
    const removed = run([publish(manifest({ counter: cell('h1') }), 4)], again).state as AppState
    assert.deepEqual(Object.keys(removed.holders ?? {}), ['shop/counter#0'])
  })

  it('holders: clones placed side by side are paired from then on; one a later placement of the epoch no longer lists is dropped until placed again; a primary left without a clone is alone from then on', () => {
    const { state } = run([
      publish(first, 1),
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2', 'n3'] }], cart: [{ primary: 'n1', clones: ['n4'] }, { primary: 'n3', clones: ['n4'] }] } },
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n1', clones: [] }, { primary: 'n3', clones: [] }] } },
      { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: ['n2'] }], cart: [{ primary: 'n1', clones: ['n4'] }, { primary: 'n2', clones: [] }] } }
    ])
    const of = (address: string): unknown => state?.holders?.[address]
    assert.deepEqual(of('shop/counter#0'), [{ node: 'n1', epoch: 1, role: 'primary', alone: false }, { node: 'n2', epoch: 1, role: 'clone', paired: true }, { node: 'n3', epoch: 1, role: 'clone', paired: true, dropped: true }])
    assert.deepEqual(of('shop/cart#0'), [{ node: 'n1', epoch: 1, role: 'primary', alone: true }, { node: 'n4', epoch: 1, role: 'clone', readded: true }], 'placed again: no longer dropped, but readded; its primary answered alone meanwhile')
    // a new epoch leaves the holders of the one before as they were
    assert.deepEqual(of('shop/cart#1'), [{ node: 'n3', epoch: 1, role: 'primary', alone: true }, { node: 'n4', epoch: 1, role: 'clone', dropped: true }, { node: 'n2', epoch: 2, role: 'primary', alone: true }])
  })

  it('scale refuses unknown cells and bad counts', () => {
    const { state } = run([publish(first, 1)])
    const { results } = run([
      { id: id(), kind: 'scale', ...alice, at: 2, cell: 'nope', replicas: 2 },
      { id: id(), kind: 'scale', ...alice, at: 3, cell: 'cart', replicas: 0 },
      { id: id(), kind: 'scale', ...alice, at: 4, cell: 'cart', replicas: 1.5 }
    ], state)
    assert.deepEqual(results.map(r => r.ok), [false, false, false])
  })

  it('scale refuses to change the shards of a keyed cell', () => {
    const { state } = run([publish(manifest({ cart: { ...cell('h2', 4), keyed: true, idle: 60_000 } }), 1)])
    const { results } = run([
      { id: id(), kind: 'scale', ...alice, at: 2, cell: 'cart', replicas: 8 },
      { id: id(), kind: 'scale', ...alice, at: 3, cell: 'cart', replicas: 4 }
    ], state)
    assert.deepEqual(results.map(r => [r.ok, r.error]), [[false, 'cell cart is keyed: its 4 shards are fixed (its keys hash to them)'], [true, undefined]])
  })

  it('a publish cannot change the shards of a keyed cell or make it unkeyed, but may after a revert', () => {
    const keyed = (replicas: number, bundle = 'h2'): AppManifest => manifest({ cart: { ...cell(bundle, replicas), keyed: true, idle: 60_000 } })
    const { state } = run([publish(keyed(4), 1)])
    const { results } = run([publish(keyed(8), 2), publish(manifest({ cart: cell('h2', 4) }), 3), publish(keyed(4, 'h3'), 4)], state)
    assert.deepEqual(results.map(r => r.ok), [false, false, true])
    assert.match(results[0].error ?? '', /cell cart is keyed with 4 shards: a publish cannot change its shards/)
    const reverted = run([{ id: id(), kind: 'revert', ...alice, at: 2, cell: 'cart' }, publish(keyed(8), 3)], state)
    assert.deepEqual(reverted.results.map(r => r.ok), [true, true])
  })

  it('reverting a cell drops it until the next publish; reverting the app dissolves it', () => {
    const { state } = run([publish(first, 1), { id: id(), kind: 'revert', ...alice, at: 2, cell: 'cart' }])
    assert.deepEqual(activeCells(state as AppState), ['counter'])
    const republished = run([publish(first, 3)], state).state as AppState
    assert.deepEqual(activeCells(republished), ['cart', 'counter'])
    const early = run([{ id: id(), kind: 'dissolve' }], republished)
    assert.equal(early.results[0].ok, false, 'dissolve only after a revert')
    const { state: gone, results } = run([{ id: id(), kind: 'revert', ...alice, at: 4 }, { id: id(), kind: 'dissolve' }], republished)
    assert.deepEqual(results.map(r => r.ok), [true, true])
    assert.equal(gone, undefined)
  })

  it('replaying the same log gives the same state', () => {
    const log: AppCommand[] = [publish(first, 1), { id: id(), kind: 'place', placement: { counter: [{ primary: 'n1', clones: [] }], cart: [{ primary: 'n2', clones: [] }, { primary: null, clones: [] }] } }, { id: id(), kind: 'scale', ...alice, at: 2, cell: 'counter', replicas: 3 }]
    const a = run(log.map(c => decodeCommand(encodeCommand(c)))).state
    const b = run(log).state
    assert.deepEqual(a, b)
  })

  it('decoding refuses malformed log entries with one-line errors', () => {
    const bad = ['', 'null', '[]', '{"kind":"x","id":"1"}', '{"kind":"publish","id":"1"}', '{"kind":"place","id":"1"}', '{"kind":"scale","owner":"a","ownerKey":"k","at":1}']
    for (const text of bad) assert.throws(() => decodeCommand(new TextEncoder().encode(text)), /^Error: invalid app command: /)
    assert.throws(() => decodeCommand(new Uint8Array([0xff, 0xfe])), /not JSON/)
  })

  it('autoscale: the leader changes a consumer\'s replicas within its bounds, only from the count it decided on; instances scaled away drop their holders', () => {
    const consumer = { ...cell('h3', 2), consumes: [{ stream: 'orders', mode: 'group' as const }], autoscale: { min: 1, max: 3, lag: 100 } }
    const placed = { id: id(), kind: 'place' as const, placement: { worker: [{ primary: 'n1', clones: [] }, { primary: 'n2', clones: [] }] } }
    const { state } = run([publish(manifest({ worker: consumer, counter: cell('h1') }), 1), placed])
    assert.deepEqual(Object.keys(state?.holders ?? {}).sort(), ['shop/worker#0', 'shop/worker#1'])
    const { state: after, results } = run([
      { id: id(), kind: 'autoscale', cell: 'worker', from: 2, replicas: 3 },
      { id: id(), kind: 'autoscale', cell: 'worker', from: 2, replicas: 1 },
      { id: id(), kind: 'autoscale', cell: 'worker', from: 3, replicas: 4 },
      { id: id(), kind: 'autoscale', cell: 'counter', from: 1, replicas: 2 },
      { id: id(), kind: 'autoscale', cell: 'worker', from: 3, replicas: 1 }
    ], state)
    assert.deepEqual(results.map(r => r.ok), [true, false, false, false, true])
    assert.match(results[1].error ?? '', /stale autoscale of cell worker: it has 3 replicas, not 2/)
    assert.match(results[2].error ?? '', /outside 1\.\.3/)
    assert.match(results[3].error ?? '', /cell counter of app shop does not autoscale/)
    assert.equal(after?.manifest.cells.worker.replicas, 1)
    assert.deepEqual(after?.placement.worker, [{ primary: 'n1', clones: [] }])
    // grown again, worker#1 starts blank: no old holder to wait for, no old cursors
    assert.deepEqual(Object.keys(after?.holders ?? {}), ['shop/worker#0'])
    // a publish of the same manifest keeps the replicas autoscale chose
    const again = run([publish(manifest({ worker: consumer, counter: cell('h1') }), 2)], after)
    assert.deepEqual(again.results.map(r => [r.ok, r.changed]), [[true, false]])
    assert.equal(again.state?.manifest.cells.worker.replicas, 1)
    assert.throws(() => decodeCommand(new TextEncoder().encode(JSON.stringify({ id: 'x', kind: 'autoscale', cell: 'worker', replicas: 2 }))), /autoscale without cell, from and replicas/)
  })
})
