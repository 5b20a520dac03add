import assert from 'node:assert/strict'
import { planShardMoves } from '../../src/topology/shard-balance.js'
import type { ShardBalanceInput } from '../../src/topology/shard-balance.js'
import type { Placement } from '../../src/topology/placement-accounting.js'

/** `n` shards of `cart`, primaries alternating over `nodes`, each with its clone on the next node */
function spread (n: number, nodes: string[]): Placement {
  return { cart: Array.from({ length: n }, (_, i) => ({ primary: nodes[i % nodes.length], clones: [nodes[(i + 1) % nodes.length]] })) }
}

function input (placement: Placement, over: Partial<ShardBalanceInput> = {}): ShardBalanceInput {
  return { app: 'shop', placement, cells: ['cart'], live: ['a', 'b', 'c'], targets: ['a', 'b', 'c'], ready: () => true, maxMoves: 2, ...over }
}

function primariesPerNode (p: Placement, cell = 'cart'): Record<string, number> {
  const out: Record<string, number> = {}
  for (const inst of p[cell]) if (inst.primary !== null) out[inst.primary] = (out[inst.primary] ?? 0) + 1
  return out
}

describe('shard balance (shards move when a node joins)', () => {
  it('warms a clone on the joined node first: primaries stay, at most maxMoves clones move', () => {
    const before = spread(12, ['a', 'b'])
    const out = planShardMoves(input(before))
    assert.equal(out.moves.length, 2)
    assert.ok(out.moves.every(m => m.kind === 'warm' && m.to === 'c'))
    assert.deepEqual(primariesPerNode(out.placement), { a: 6, b: 6 }, 'no primary moves before its clone runs on the target')
    for (const m of out.moves) assert.deepEqual(out.placement.cart[m.index].clones, ['c'])
    // one from each full node, the input untouched
    assert.deepEqual(new Set(out.moves.map(m => out.placement.cart[m.index].primary)), new Set(['a', 'b']))
    assert.deepEqual(before, spread(12, ['a', 'b']))
  })

  it('hands a shard over once its clone runs on the target: the old primary stays as its clone', () => {
    const warmed = planShardMoves(input(spread(12, ['a', 'b']))).placement
    const out = planShardMoves(input(warmed))
    assert.equal(out.moves.length, 2)
    for (const m of out.moves) {
      assert.equal(m.kind, 'handover')
      assert.equal(m.to, 'c')
      assert.deepEqual(out.placement.cart[m.index], { primary: 'c', clones: [m.from] })
    }
  })

  it('a clone still starting on its target counts as a move under way', () => {
    const warmed = planShardMoves(input(spread(12, ['a', 'b']))).placement
    const out = planShardMoves(input(warmed, { ready: () => false }))
    assert.deepEqual(out.moves, [])
    assert.equal(out.warming.length, 2)
    assert.deepEqual(out.placement, warmed)
  })

  it('converges to a spread of at most one primary per node, never more than maxMoves in motion, and then stays', () => {
    for (const [shards, maxMoves] of [[12, 1], [16, 2], [7, 3], [30, 2]]) {
      let placement = spread(shards, ['a', 'b'])
      let rounds = 0
      for (;;) {
        const out = planShardMoves(input(placement, { maxMoves }))
        assert.ok(out.moves.length + out.warming.length <= maxMoves)
        for (const inst of out.placement.cart) assert.ok(inst.primary !== null && !inst.clones.includes(inst.primary) && inst.clones.length === 1)
        if (out.moves.length === 0) break
        placement = out.placement
        assert.ok(++rounds < 100, 'no convergence')
      }
      const counts = Object.values(primariesPerNode(placement))
      assert.equal(counts.length, 3)
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${shards} shards: ${JSON.stringify(primariesPerNode(placement))}`)
      assert.deepEqual(planShardMoves(input(placement, { maxMoves })).moves, [], 'balanced: nothing moves again')
    }
  })

  it('does not move for a spread of one', () => {
    const placement: Placement = { cart: [{ primary: 'a', clones: ['b'] }, { primary: 'a', clones: ['c'] }, { primary: 'b', clones: ['a'] }, { primary: 'c', clones: ['a'] }] }
    assert.deepEqual(planShardMoves(input(placement)).moves, [])
  })

  it('gives nothing to a node that is not a target (not settled) and takes nothing from one that is not live', () => {
    const placement = spread(12, ['a', 'b'])
    assert.deepEqual(planShardMoves(input(placement, { targets: ['a', 'b'] })).moves, [])
    // c holds every primary but is judged down: its shards are failover's, not rebalance's
    const onC: Placement = { cart: Array.from({ length: 6 }, () => ({ primary: 'c', clones: ['a'] })) }
    assert.deepEqual(planShardMoves(input(onC, { live: ['a', 'b'], targets: ['a', 'b'] })).moves, [])
    // a target that is not live receives nothing
    assert.deepEqual(planShardMoves(input(placement, { live: ['a', 'b'] })).moves, [])
  })

  it('moves only shards of the given cells with exactly one clone', () => {
    const two: Placement = { cart: Array.from({ length: 6 }, () => ({ primary: 'a', clones: ['b', 'c'] })), other: spread(6, ['a', 'b']).cart }
    assert.deepEqual(planShardMoves(input(two)).moves, [], 'two clones: a primary may answer on the other one')
    const none: Placement = { cart: Array.from({ length: 6 }, () => ({ primary: 'a', clones: [] })) }
    assert.deepEqual(planShardMoves(input(none)).moves, [], 'no clone: nothing warm to hand to')
    const other: Placement = { cart: [], other: Array.from({ length: 6 }, (_, i) => ({ primary: 'a', clones: [i % 2 === 0 ? 'b' : 'c'] })) }
    assert.deepEqual(planShardMoves(input(other)).moves, [], 'a cell not listed (not keyed) stays put')
  })

  it('is deterministic', () => {
    const placement = spread(16, ['b', 'a'])
    assert.deepEqual(planShardMoves(input(placement)), planShardMoves(input(placement, { live: ['c', 'b', 'a'], targets: ['c', 'a', 'b'] })))
  })
})
