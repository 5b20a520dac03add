import assert from 'node:assert/strict'
import { appUsage, capacityFor, defaultAccounting } from '../../src/topology/placement-accounting.js'
import type { DesiredApp, Placement } from '../../src/topology/placement-accounting.js'
import { place } from '../../src/topology/placement.js'
import type { PlacementAction, PlacementInput, PlacementResult } from '../../src/topology/placement.js'
import type { Amount, NodeCapacity } from '../../src/topology/types.js'
import { prng } from '../support/prng.js'
import { parseManifest } from '../../src/topology/manifest.js'

const MiB = 2 ** 20

function node (id: string, memoryMiB: number, cells: number, zone?: string, alive = true): NodeCapacity {
  return { id, contributed: { cpu: 2, memory: memoryMiB * MiB, cells }, alive, ...(zone !== undefined ? { zone } : {}) }
}

function app (cells: Record<string, { replicas?: number, clones?: number, memoryMiB?: number }>): DesiredApp {
  const out: DesiredApp = { app: 'shop', cells: {} }
  for (const [name, c] of Object.entries(cells)) out.cells[name] = { replicas: c.replicas ?? 1, clones: c.clones ?? 0, memory: (c.memoryMiB ?? 32) * MiB }
  return out
}

/** Checks every invariant of a placement result; returns nothing, throws on a violation. */
function checkInvariants (input: PlacementInput, result: PlacementResult): void {
  const live = new Map(input.nodes.filter(n => n.alive).map(n => [n.id, n]))
  const usage = appUsage(input.desired, result.placement)
  for (const [id, used] of usage) {
    const n = live.get(id)
    assert.ok(n !== undefined, `placed on node ${id} which is not live`)
    const cap = capacityFor(n, input.reservedByOthers?.get(id))
    assert.ok(used.memory <= cap.memory, `node ${id} oversubscribed: ${used.memory} > ${cap.memory}`)
    assert.ok(used.cells <= cap.cells, `node ${id} holds ${used.cells} cells > ${cap.cells}`)
  }
  assert.deepEqual(Object.keys(result.placement).sort(), Object.keys(input.desired.cells).sort())
  const pending = new Set(result.pending.map(p => `${p.address}:${p.role}`))
  for (const [cell, spec] of Object.entries(input.desired.cells)) {
    const instances = result.placement[cell]
    assert.equal(instances.length, spec.replicas, `${cell} has ${instances.length} instances, wants ${spec.replicas}`)
    instances.forEach((inst, i) => {
      const address = `shop/${cell}#${i}`
      const members = [inst.primary, ...inst.clones].filter(m => m !== null)
      assert.equal(new Set(members).size, members.length, `${address}: clone shares a node with its primary or another clone: ${JSON.stringify(inst)}`)
      assert.ok(inst.clones.length <= spec.clones, `${address}: too many clones`)
      if (inst.primary === null) {
        assert.equal(inst.clones.length, 0, `${address}: clones without a primary`)
        assert.ok(pending.has(`${address}:primary`), `${address} has no primary and is not reported pending`)
      } else if (inst.clones.length < spec.clones) {
        assert.ok(pending.has(`${address}:clone`), `${address} lacks clones and is not reported pending`)
      }
    })
  }
}

/** Applies the actions to the live part of the current placement; must give the result. */
function checkActionsExplainResult (input: PlacementInput, result: PlacementResult): void {
  const live = new Set(input.nodes.filter(n => n.alive).map(n => n.id))
  const sim = new Map<string, { primary: string | null, clones: string[] }>()
  for (const [cell, instances] of Object.entries(input.current)) {
    instances.forEach((inst, i) => {
      sim.set(`shop/${cell}#${i}`, {
        primary: inst.primary !== null && live.has(inst.primary) ? inst.primary : null,
        clones: [...new Set(inst.clones.filter(c => live.has(c)))]
      })
    })
  }
  const get = (a: string): { primary: string | null, clones: string[] } => {
    const s = sim.get(a) ?? { primary: null, clones: [] }
    sim.set(a, s)
    return s
  }
  for (const act of result.actions) {
    const s = get(act.address)
    switch (act.kind) {
      case 'place-primary': assert.equal(s.primary, null, `${act.address}: place-primary over an existing one`); s.primary = act.node; break
      case 'promote':
        assert.ok(s.clones.includes(act.node), `${act.address}: promotes a non-clone ${act.node}`)
        s.primary = act.node; s.clones = s.clones.filter(c => c !== act.node); break
      case 'move-primary': assert.equal(s.primary, act.from, `${act.address}: move-primary from the wrong node`); s.primary = act.node; break
      case 'drop-primary': if (s.primary === act.node) s.primary = null; break
      case 'place-clone': assert.ok(!s.clones.includes(act.node)); s.clones.push(act.node); break
      case 'move-clone': s.clones = s.clones.filter(c => c !== act.from); s.clones.push(act.node); break
      case 'drop-clone': s.clones = s.clones.filter(c => c !== act.node); break
    }
  }
  for (const [address, s] of sim) {
    const [, cell, index] = /^shop\/(.+)#(\d+)$/.exec(address) as RegExpExecArray
    const want = result.placement[cell]?.[Number(index)]
    if (want === undefined) {
      assert.equal(s.primary, null, `${address}: dropped instance still has a primary`)
      assert.deepEqual(s.clones, [], `${address}: dropped instance still has clones`)
    } else {
      assert.equal(s.primary, want.primary, `${address}: actions give primary ${s.primary}, result says ${want.primary}`)
      assert.deepEqual([...s.clones].sort(), [...want.clones].sort(), `${address}: actions give clones ${s.clones}, result says ${want.clones}`)
    }
  }
}

function run (input: PlacementInput): PlacementResult {
  const result = place(input)
  checkInvariants(input, result)
  checkActionsExplainResult(input, result)
  return result
}

const kinds = (actions: PlacementAction[]): string[] => actions.map(a => a.kind)

describe('topology/placement', () => {
  it('spreads replicas across nodes and puts clones elsewhere', () => {
    const nodes = [node('a', 1024, 10), node('b', 1024, 10), node('c', 1024, 10)]
    const r = run({ desired: app({ counter: { replicas: 3, clones: 1 } }), current: {}, nodes })
    assert.deepEqual(new Set(r.placement.counter.map(i => i.primary)), new Set(['a', 'b', 'c']))
    for (const inst of r.placement.counter) assert.notEqual(inst.clones[0], inst.primary)
    assert.equal(kinds(r.actions).filter(k => k === 'place-primary').length, 3)
    assert.equal(kinds(r.actions).filter(k => k === 'place-clone').length, 3)
    assert.deepEqual(r.pending, [])
  })

  it('prefers another failure zone for a clone and for further replicas', () => {
    const nodes = [node('a', 1024, 10, 'home'), node('b', 4096, 10, 'home'), node('c', 1024, 10, 'cloud')]
    const r = run({ desired: app({ db: { replicas: 1, clones: 1 } }), current: {}, nodes })
    const inst = r.placement.db[0]
    assert.equal(inst.primary, 'b', 'the roomiest node')
    assert.deepEqual(inst.clones, ['c'], 'the clone goes to the other zone although a is roomier than c after placement')
    const r2 = run({ desired: app({ web: { replicas: 2 } }), current: {}, nodes })
    assert.deepEqual(new Set(r2.placement.web.map(i => nodes.find(n => n.id === i.primary)?.zone)), new Set(['home', 'cloud']))
  })

  it('counts memory with headroom plus one host footprint per node', () => {
    // 2 × 32MiB + 40MiB = 104MiB for the first cell, +64MiB per further cell
    const nodes = [node('a', 168, 10)]
    const r = run({ desired: app({ c: { replicas: 3 } }), current: {}, nodes })
    assert.deepEqual(r.placement.c.map(i => i.primary), ['a', 'a', null])
    assert.equal(r.pending.length, 1)
    assert.match(r.pending[0].reason, /no live node has room for 64MiB \(memory limit × 2\) and one cell slot/)
    assert.equal(appUsage(app({ c: { replicas: 3 } }), r.placement).get('a')?.memory, 168 * MiB)
  })

  it('respects the cell count and other apps\' reservations', () => {
    const nodes = [node('a', 4096, 2), node('b', 4096, 10)]
    const reserved = new Map<string, Amount>([['b', { memory: 4096 * MiB - 200 * MiB, cells: 0 }]])
    const r = run({ desired: app({ c: { replicas: 5 } }), current: {}, nodes, reservedByOthers: reserved })
    const onA = r.placement.c.filter(i => i.primary === 'a').length
    const onB = r.placement.c.filter(i => i.primary === 'b').length
    assert.equal(onA, 2)
    assert.equal(onB, 2, 'b has 200MiB for this app: footprint 40 + 2 × 64')
    assert.equal(r.pending.length, 1)
  })

  it('reports pending with a reason instead of oversubscribing, and "no live node" when all are gone', () => {
    const r = run({ desired: app({ big: { memoryMiB: 1024 } }), current: {}, nodes: [node('a', 1024, 10)] })
    assert.equal(r.placement.big[0].primary, null)
    assert.deepEqual(r.actions, [])
    assert.match(r.pending[0].reason, /2GiB/)
    const none = run({ desired: app({ c: {} }), current: {}, nodes: [node('a', 1024, 10, undefined, false)] })
    assert.deepEqual(none.pending, [{ address: 'shop/c#0', role: 'primary', reason: 'no live node' }])
    const oneNode = run({ desired: app({ c: { clones: 1 } }), current: {}, nodes: [node('a', 1024, 10)] })
    assert.equal(oneNode.placement.c[0].primary, 'a')
    assert.deepEqual(oneNode.pending.map(p => p.role), ['clone'])
    assert.match(oneNode.pending[0].reason, /other than those holding this instance/)
  })

  it('fails over: promotes the clone on the healthiest node and places a new clone', () => {
    const nodes = [node('a', 1024, 10, undefined, false), node('b', 1024, 10), node('c', 4096, 10), node('d', 1024, 10)]
    const current: Placement = { db: [{ primary: 'a', clones: ['b', 'c'] }] }
    const r = run({ desired: app({ db: { clones: 2 } }), current, nodes })
    assert.deepEqual(r.actions[0], { kind: 'promote', address: 'shop/db#0', node: 'c', from: 'a', reason: "primary's node a is gone" })
    assert.equal(r.placement.db[0].primary, 'c')
    assert.deepEqual(r.placement.db[0].clones, ['b', 'd'])
    assert.deepEqual(r.actions[1], { kind: 'place-clone', address: 'shop/db#0', node: 'd', reason: 'replaces the clone promoted to primary' })
  })

  it('re-places a lost primary without clone and a lost clone', () => {
    const nodes = [node('a', 1024, 10, undefined, false), node('b', 1024, 10), node('c', 1024, 10)]
    const current: Placement = { x: [{ primary: 'a', clones: [] }], y: [{ primary: 'b', clones: ['a'] }] }
    const r = run({ desired: app({ x: {}, y: { clones: 1 } }), current, nodes })
    assert.deepEqual(r.actions.map(a => `${a.kind} ${a.address} ${a.node} ${a.reason}`), [
      'place-primary shop/x#0 c replaces the primary lost with node a (no clone)',
      'place-clone shop/y#0 c replaces the clone lost with node a'
    ])
  })

  it('sheds clones first when a node goes over its limit, promoting or moving as needed', () => {
    const desired = app({ c: { replicas: 2, clones: 1 } })
    const nodes = [node('a', 1024, 10), node('b', 1024, 10), node('c', 1024, 10)]
    const first = run({ desired, current: {}, nodes })
    // node a now contributes room for a single cell
    const shrunk = nodes.map(n => n.id === 'a' ? node('a', 1024, 1) : n)
    const cellsOnA = appUsage(desired, first.placement).get('a')?.cells ?? 0
    assert.ok(cellsOnA >= 1)
    const r = run({ desired, current: first.placement, nodes: shrunk })
    assert.ok((appUsage(desired, r.placement).get('a')?.cells ?? 0) <= 1)
    // nothing went pending: b and c have room
    assert.deepEqual(r.pending, [])
    // a node contributing nothing any more gets everything moved away
    const zero = nodes.map(n => n.id === 'a' ? node('a', 0, 0) : n)
    const z = run({ desired, current: first.placement, nodes: zero })
    assert.equal(appUsage(desired, z.placement).get('a'), undefined)
    assert.ok(z.actions.every(a => a.kind !== 'place-primary'), 'running primaries are promoted or moved, not re-created')
  })

  it('drops instances on scale-down and cells removed from the manifest', () => {
    const nodes = [node('a', 1024, 10), node('b', 1024, 10)]
    const first = run({ desired: app({ c: { replicas: 3, clones: 1 }, old: {} }), current: {}, nodes })
    const r = run({ desired: app({ c: { replicas: 1 } }), current: first.placement, nodes })
    assert.ok(r.actions.every(a => a.kind === 'drop-primary' || a.kind === 'drop-clone'))
    assert.ok(r.actions.some(a => a.reason === 'replicas reduced to 1'))
    assert.ok(r.actions.some(a => a.reason === 'clones reduced to 0'))
    assert.ok(r.actions.some(a => a.address === 'shop/old#0' && a.reason === 'cell removed from the manifest'))
    assert.deepEqual(Object.keys(r.placement), ['c'])
  })

  it('drops a clone that shares its primary\'s node', () => {
    const r = run({ desired: app({ c: { clones: 1 } }), current: { c: [{ primary: 'a', clones: ['a'] }] }, nodes: [node('a', 1024, 10), node('b', 1024, 10)] })
    assert.deepEqual(kinds(r.actions), ['drop-clone', 'place-clone'])
    assert.deepEqual(r.placement.c[0], { primary: 'a', clones: ['b'] })
  })

  it('is deterministic whatever the order of the nodes', () => {
    const nodes = [node('n1', 512, 4), node('n2', 512, 4), node('n3', 2048, 8), node('n4', 512, 4)]
    const desired = app({ a: { replicas: 3, clones: 1 }, b: { replicas: 2, memoryMiB: 64 } })
    const r1 = place({ desired, current: {}, nodes })
    const r2 = place({ desired, current: {}, nodes: [...nodes].reverse() })
    assert.deepEqual(r1, r2)
  })

  it('keeps valid placements: a joining node moves at most maxMoves instances per round', () => {
    const nodes = [node('a', 2048, 20), node('b', 2048, 20)]
    const desired = app({ c: { replicas: 6, clones: 1 } })
    const first = run({ desired, current: {}, nodes })
    const joined = [...nodes, node('c', 2048, 20)]
    let current = first.placement
    const r = run({ desired, current, nodes: joined })
    assert.ok(r.actions.length <= 1, `one move at most, got ${JSON.stringify(r.actions)}`)
    assert.ok(r.actions.every(a => a.kind === 'move-clone' || a.kind === 'move-primary'))
    let moved = 0
    for (let round = 0; round < 20; round++) {
      const step = run({ desired, current, nodes: joined })
      if (step.actions.length === 0) break
      moved += step.actions.length
      current = step.placement
    }
    assert.deepEqual(place({ desired, current, nodes: joined }).actions, [], 'converges')
    assert.ok(moved > 0 && moved <= 6, `a few of the 12 copies move to the new node, not all (${moved})`)
    assert.ok((appUsage(desired, current).get('c')?.cells ?? 0) >= 1, 'the new node took some')
  })

  it('does not rebalance for a small gain', () => {
    const nodes = [node('a', 1024, 10), node('b', 1024, 10)]
    const current: Placement = { c: [{ primary: 'a', clones: [] }] }
    // a: 104MiB used of 1GiB (10%) vs b 0%: below the 25% threshold
    assert.deepEqual(place({ desired: app({ c: {} }), current, nodes }).actions, [])
  })

  it('holds its invariants on random meshes and placements (seeded)', function () {
    this.timeout(120_000)
    const seeds = 400
    for (let seed = 1; seed <= seeds; seed++) {
      const rnd = prng(seed)
      const ids = Array.from({ length: rnd.int(1, 8) }, (_, i) => `p${i}`)
      const nodes = ids.map(id => node(id, rnd.pick([0, 128, 256, 512, 1024, 4096]), rnd.int(0, 12), rnd.pick([undefined, 'z1', 'z2']), rnd.next() > 0.15))
      const reservedByOthers = new Map<string, Amount>()
      for (const id of ids) if (rnd.next() < 0.3) reservedByOthers.set(id, { memory: rnd.int(0, 1024) * MiB, cells: rnd.int(0, 6) })
      const cells: Record<string, { replicas: number, clones: number, memoryMiB: number }> = {}
      for (let i = 0; i < rnd.int(1, 4); i++) cells[`c${i}`] = { replicas: rnd.int(0, 4), clones: rnd.int(0, 2), memoryMiB: rnd.pick([8, 16, 32, 64, 128]) }
      const desired = app(cells)
      // a random, possibly invalid, current placement (dead nodes, co-located clones, too many)
      const current: Placement = {}
      for (const cell of [...Object.keys(cells), 'gone']) {
        if (rnd.next() < 0.3) continue
        current[cell] = Array.from({ length: rnd.int(0, 5) }, () => ({
          primary: rnd.next() < 0.15 ? null : rnd.pick(ids),
          clones: Array.from({ length: rnd.int(0, 3) }, () => rnd.pick(ids))
        }))
      }
      const input: PlacementInput = { desired, current, nodes, reservedByOthers }
      try {
        let result = run(input)
        let rounds = 0
        for (;;) {
          const hadMoves = result.actions.some(a => a.reason.startsWith('balance'))
          const next = run({ ...input, current: result.placement })
          if (!hadMoves) assert.deepEqual(next.actions, [], 'a round without balance moves is a fixpoint')
          if (next.actions.length === 0) break
          assert.ok(++rounds < 30, 'converges')
          result = next
        }
        const settled = { ...input, current: result.placement }
        // stability: a new, empty node moves at most maxMoves copies (besides placing what was pending)
        const joined = run({ ...settled, nodes: [...nodes, node('new', 4096, 12)] })
        const wasPending = new Set(result.pending.map(p => p.address))
        assert.ok(joined.actions.filter(a => a.kind.startsWith('move')).length <= 1, 'one move per round at most')
        for (const a of joined.actions) {
          assert.ok(a.kind.startsWith('move') || (a.kind.startsWith('place') && wasPending.has(a.address)), `unexpected ${a.kind} of ${a.address} after a join`)
        }
        // failover: every instance whose primary died and that had a live clone is served by one of its clones
        const victim = rnd.pick(ids)
        const failed = run({ ...settled, rebalance: { maxMoves: 0 }, nodes: nodes.map(n => n.id === victim ? { ...n, alive: false } : n) })
        for (const [cell, instances] of Object.entries(result.placement)) {
          instances.forEach((inst, i) => {
            const liveClones = inst.clones.filter(c => c !== victim)
            if (inst.primary === victim && liveClones.length > 0) {
              assert.ok(liveClones.includes(failed.placement[cell][i].primary as string), `shop/${cell}#${i} did not promote a clone`)
            } else if (inst.primary !== null && inst.primary !== victim) {
              assert.equal(failed.placement[cell][i].primary, inst.primary, `shop/${cell}#${i} moved although its node lives`)
            }
          })
        }
      } catch (err) {
        throw new Error(`seed ${seed}: ${(err as Error).message}`)
      }
    }
  })

  it('places a parsed manifest directly', () => {
    const m = parseManifest('app: shop\ncells:\n  counter:\n    code: ./counter.js\n    replicas: 2\n    clones: 1\n', 'shop.yaml')
    const r = run({ desired: m, current: {}, nodes: [node('a', 1024, 10), node('b', 1024, 10)] })
    assert.equal(r.actions.length, 4)
    assert.deepEqual(r.actions.map(a => a.address), ['shop/counter#0', 'shop/counter#1', 'shop/counter#0', 'shop/counter#1'])
  })

  it('uses the default accounting rule of 2 × memory + 40MiB', () => {
    assert.deepEqual(defaultAccounting, { memoryHeadroom: 2, hostFootprint: 40 * MiB })
  })
})
