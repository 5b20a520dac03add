// clone-caught-up.ts: a clone is promoted in a handover only when it holds at least the
// version the running primary has (a clone started lately may hold nothing yet).
import assert from 'node:assert/strict'
import { cloneCaughtUp, mayPromoteDirectly } from '../../src/topology/clone-caught-up.js'
import type { Holder } from '../../src/topology/recovery.js'
import type { CloneService } from '../../src/topology/clones.js'
import { createLogger, setLogSink } from '../../src/util/logger.js'

const A = 'shop/counter#0'
type Report = Awaited<ReturnType<CloneService['inventoryOf']>>[number]

function inventories (of: Record<string, Report[] | Error>): Pick<CloneService, 'inventoryOf'> {
  return {
    inventoryOf: async (node: string) => {
      const r = of[node]
      if (r instanceof Error) throw r
      return r ?? []
    }
  }
}

describe('topology: a handover\'s clone caught up with its primary', () => {
  let restore: () => void
  beforeEach(() => { restore = setLogSink(() => {}) })
  afterEach(() => { restore() })
  const log = createLogger('test')

  it('is caught up when the clone holds the version the primary runs, or a later one', async () => {
    assert.equal(await cloneCaughtUp(inventories({ p: [{ address: A, version: 7, epoch: 2, running: true }], c: [{ address: A, version: 7, epoch: 2, running: false }] }), log, 'shop', A, 'p', 'c'), true)
    assert.equal(await cloneCaughtUp(inventories({ p: [{ address: A, version: 7, epoch: 2, running: true }], c: [{ address: A, version: 8, epoch: 2, running: false }] }), log, 'shop', A, 'p', 'c'), true)
  })

  it('is not when the clone lags, holds nothing yet, is damaged, or an inventory does not come', async () => {
    const primary = { address: A, version: 4941, epoch: 2, running: true }
    assert.equal(await cloneCaughtUp(inventories({ p: [primary], c: [{ address: A, version: 4940, epoch: 2, running: false }] }), log, 'shop', A, 'p', 'c'), false)
    // the chaos case: a clone started 2.5 s before the handover, never sent a state
    assert.equal(await cloneCaughtUp(inventories({ p: [primary], c: [] }), log, 'shop', A, 'p', 'c'), false)
    assert.equal(await cloneCaughtUp(inventories({ p: [primary], c: [{ address: A, version: 4941, epoch: 2, running: false, damaged: true }] }), log, 'shop', A, 'p', 'c'), false)
    assert.equal(await cloneCaughtUp(inventories({ p: new Error('unreachable'), c: [{ address: A, version: 4941, epoch: 2, running: false }] }), log, 'shop', A, 'p', 'c'), false)
    // a copy on the primary's node that is not running is no primary to compare with
    assert.equal(await cloneCaughtUp(inventories({ p: [{ ...primary, running: false }], c: [{ address: A, version: 4941, epoch: 2, running: false }] }), log, 'shop', A, 'p', 'c'), false)
  })

  describe('a failover promoting the clone of a primary that is gone', () => {
    // epoch 1: P primary, C1 clone; epoch 2: a shard's warm step moves the clone to N (C1
    // drops its copy); epoch 3: P was killed before its first push to N, N is placed primary
    const warm: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C1', epoch: 1, role: 'clone' }, { node: 'P', epoch: 2, role: 'primary' }, { node: 'N', epoch: 2, role: 'clone' }, { node: 'N', epoch: 3, role: 'primary' }]

    it('does not promote a clone that holds no state yet (the warm step\'s gap), a damaged one, or one whose inventory does not come', async () => {
      assert.equal(await mayPromoteDirectly(inventories({ N: [] }), log, 'shop', A, warm, 3, 'N'), false)
      assert.equal(await mayPromoteDirectly(inventories({ N: [{ address: A, version: 3, epoch: 2, running: false, damaged: true }] }), log, 'shop', A, warm, 3, 'N'), false)
      assert.equal(await mayPromoteDirectly(inventories({ N: new Error('unreachable') }), log, 'shop', A, warm, 3, 'N'), false)
    })

    it('promotes the only clone of the epoch before once it holds a state of that epoch (the primary\'s first push is its whole state)', async () => {
      assert.equal(await mayPromoteDirectly(inventories({ N: [{ address: A, version: 0, epoch: 2, running: false }] }), log, 'shop', A, warm, 3, 'N'), true)
      const steady: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'N', epoch: 1, role: 'clone' }, { node: 'P', epoch: 2, role: 'primary' }, { node: 'N', epoch: 2, role: 'clone' }, { node: 'N', epoch: 3, role: 'primary' }]
      assert.equal(await mayPromoteDirectly(inventories({ N: [{ address: A, version: 41, epoch: 2, running: false }] }), log, 'shop', A, steady, 3, 'N'), true)
    })

    it('asks every holder when the epoch before never ran: the newest state is older and another clone confirmed it (sim:mesh seed 536)', async () => {
      // epoch 1: P primary, its clone moved from N to C2 (same epoch); epoch 2 placed Q
      // primary with N its clone, but Q never started (a partition); epoch 3 places N
      const partitioned: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'N', epoch: 1, role: 'clone' }, { node: 'C2', epoch: 1, role: 'clone' }, { node: 'Q', epoch: 2, role: 'primary' }, { node: 'N', epoch: 2, role: 'clone' }, { node: 'N', epoch: 3, role: 'primary' }]
      assert.equal(await mayPromoteDirectly(inventories({ N: [{ address: A, version: 3, epoch: 1, running: false }] }), log, 'shop', A, partitioned, 3, 'N'), false)
    })

    it('never promotes at once where another clone of the epoch before may hold a newer state (clones: 2)', async () => {
      const two: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'N', epoch: 1, role: 'clone' }, { node: 'C2', epoch: 1, role: 'clone' }, { node: 'N', epoch: 2, role: 'primary' }]
      assert.equal(await mayPromoteDirectly(inventories({ N: [{ address: A, version: 9, epoch: 1, running: false }] }), log, 'shop', A, two, 2, 'N'), false)
    })
  })
})
