// shard-rebalancer.ts: the leader's hysteresis on nodes and its check that a shard's clone
// caught up before a handover, under a stand-in inventory (the clone protocol and the moves
// themselves run with real processes in test/node/rebalance-processes.test.ts).
import assert from 'node:assert/strict'
import { ShardRebalancer } from '../../src/topology/shard-rebalancer.js'
import type { ShardRebalancerComponents } from '../../src/topology/shard-rebalancer.js'
import type { AppState } from '../../src/topology/app-state.js'
import type { HostedApp, RunningCopyState } from '../../src/topology/app-groups.js'
import { copyKey } from '../../src/topology/app-groups.js'
import type { CopyReport } from '../../src/topology/clones.js'
import type { Placement } from '../../src/topology/placement-accounting.js'
import type { NodeCapacity } from '../../src/topology/types.js'
import { createLogger, setLogSink } from '../../src/util/logger.js'

const ALL: ReadonlySet<string> = new Set(['a', 'b', 'c'])
const STATE = { app: 'shop', manifest: { cells: { cart: { keyed: true }, page: {} } }, reverted: [], dissolving: false } as unknown as AppState

function node (id: string, alive = true): NodeCapacity {
  return { id, contributed: { cpu: 1, memory: 2 ** 30, cells: 50 }, alive }
}

/** the leader's record of copies: every primary and clone of `placement` running */
function hosted (placement: Placement): HostedApp {
  const running = new Map<string, RunningCopyState>()
  for (const [cell, instances] of Object.entries(placement)) {
    instances.forEach((inst, i) => {
      const address = `shop/${cell}#${i}`
      for (const [n, role] of [[inst.primary as string, 'primary'] as const, ...inst.clones.map(c => [c, 'clone'] as const)]) {
        running.set(copyKey(address, n), { address, node: n, role, revision: 'r', state: 'transformed' })
      }
    })
  }
  return { app: 'shop', running } as unknown as HostedApp
}

/** inventories: `versions[node][address]` is the version the node reports (running if it is the primary in `placement`) */
function inventories (placement: Placement, versions: Record<string, Record<string, number>>, asked: string[] = []): ShardRebalancerComponents['clones'] {
  return {
    inventoryOf: async (peer: string): Promise<CopyReport[]> => {
      asked.push(peer)
      if (versions[peer] === undefined) throw new Error(`${peer} does not answer`)
      return Object.entries(versions[peer]).map(([address, version]) => {
        const [cell, index] = address.slice('shop/'.length).split('#')
        return { address, version, epoch: 1, running: placement[cell][Number(index)].primary === peer }
      })
    }
  }
}

describe('shard rebalancer: when the leader moves shards', () => {
  let restore: () => void
  beforeEach(() => { restore = setLogSink(() => {}) })
  afterEach(() => { restore() })

  const twoNodes: Placement = { cart: Array.from({ length: 6 }, (_, i) => ({ primary: i % 2 === 0 ? 'a' : 'b', clones: [i % 2 === 0 ? 'b' : 'a'] })), page: [{ primary: 'a', clones: ['b'] }] }

  it('a node receives shards only once it has been live settleMs without a break; one judged down starts over', async () => {
    const r = new ShardRebalancer({ clones: inventories(twoNodes, {}), logger: createLogger('test') }, { settleMs: 5000, maxMoves: 1 })
    r.observe([node('a'), node('b')], 0)
    r.observe([node('a'), node('b'), node('c')], 1000)
    assert.equal(await r.next(hosted(twoNodes), STATE, twoNodes, 5999, ALL), undefined, 'c joined 4999 ms ago')
    r.observe([node('a'), node('b'), node('c', false)], 6000)
    r.observe([node('a'), node('b'), node('c')], 7000)
    assert.equal(await r.next(hosted(twoNodes), STATE, twoNodes, 11_999, ALL), undefined, 'c was judged down at 6000: live again since 7000')
    const out = await r.next(hosted(twoNodes), STATE, twoNodes, 12_000, ALL)
    assert.ok(out !== undefined)
    assert.deepEqual(out.moves.map(m => [m.kind, m.to]), [['warm', 'c']])
    assert.deepEqual(out.placement.page, twoNodes.page, 'an unkeyed cell stays put')
  })

  it('hands a shard over only once the target may start cells and its clone holds the version its primary runs', async () => {
    // shard #0 of a warmed on c: a 3 shards, b 3, c none
    const warmed: Placement = { cart: twoNodes.cart.map((inst, i) => i === 0 ? { primary: 'a', clones: ['c'] } : inst) }
    const run = async (versions: Record<string, Record<string, number>>, startable: ReadonlySet<string> = ALL): Promise<{ out: Awaited<ReturnType<ShardRebalancer['next']>>, asked: string[] }> => {
      const asked: string[] = []
      const r = new ShardRebalancer({ clones: inventories(warmed, versions, asked), logger: createLogger('test') }, { settleMs: 0, maxMoves: 1 })
      r.observe([node('a'), node('b'), node('c')], 0)
      return { out: await r.next(hosted(warmed), STATE, warmed, 0, startable), asked }
    }
    const behind = await run({ a: { 'shop/cart#0': 7 }, c: { 'shop/cart#0': 6 } })
    assert.equal(behind.out, undefined, 'the clone lacks version 7: no move this round')
    assert.deepEqual(behind.asked, ['a', 'c'], 'the primary is asked first')
    assert.equal((await run({ a: { 'shop/cart#0': 7 } })).out, undefined, 'the clone holds no state yet')
    assert.equal((await run({ c: { 'shop/cart#0': 7 } })).out, undefined, 'the primary does not answer')
    const notStartable = await run({ a: { 'shop/cart#0': 7 }, c: { 'shop/cart#0': 7 } }, new Set(['a', 'b']))
    assert.equal(notStartable.out, undefined, 'c may not start the app\'s cells yet (its reservations are not effective)')
    assert.deepEqual(notStartable.asked, [], 'so the copies are not even compared')
    const caughtUp = (await run({ a: { 'shop/cart#0': 7 }, c: { 'shop/cart#0': 7 } })).out
    assert.ok(caughtUp !== undefined)
    assert.deepEqual(caughtUp.moves.map(m => [m.kind, m.address, m.from, m.to]), [['handover', 'shop/cart#0', 'a', 'c']])
    assert.deepEqual(caughtUp.placement.cart[0], { primary: 'c', clones: ['a'] })
  })

  it('moves nothing in a balanced app', async () => {
    const r = new ShardRebalancer({ clones: inventories(twoNodes, {}), logger: createLogger('test') }, { settleMs: 0 })
    r.observe([node('a'), node('b')], 0)
    assert.equal(await r.next(hosted(twoNodes), STATE, twoNodes, 0, ALL), undefined)
  })
})
