// clone-caught-up.ts: a clone is promoted in a handover only when it holds at least the
// version the running primary has (a clone started lately may hold nothing yet).
import assert from 'node:assert/strict'
import { cloneCaughtUp } from '../../src/topology/clone-caught-up.js'
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
})
