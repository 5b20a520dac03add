import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { contributionProblem, createContributionGuard } from '../../src/node/contribution-guard.js'
import type { Resources } from '../../src/mesh/capacity.js'
import { COUNTER, createBundler, MIB } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'

const cell = (address: string, memoryMiB = 16): { address: string, app: string, memory: number } => ({ address, app: address.split('/')[0], memory: memoryMiB * MIB })

describe('node: the contribution guard', function () {
  this.timeout(60_000)

  it('counts cells and memory like placement: limit × 2 per cell, 40 MiB per app', () => {
    const contributed: Resources = { cpu: 1, memory: 1024 * MIB, cells: 2 }
    assert.equal(contributionProblem({ cell: cell('a/c#0'), running: [] }, contributed), undefined)
    assert.equal(contributionProblem({ cell: cell('a/c#1'), running: [cell('a/c#0')] }, contributed), undefined)
    assert.match(contributionProblem({ cell: cell('b/c#0'), running: [cell('a/c#0'), cell('a/c#1')] }, contributed) ?? '', /contributes 2 cells and already runs or starts 2/)
    // 2 apps: 2 × 40 MiB + (16 + 100) × 2 MiB = 312 MiB
    const tight: Resources = { cpu: 1, memory: 311 * MIB, cells: 10 }
    assert.match(contributionProblem({ cell: cell('b/c#0', 100), running: [cell('a/c#0')] }, tight) ?? '', /would need 312 ?MiB .* of the 311 ?MiB this node contributes/)
    assert.equal(contributionProblem({ cell: cell('b/c#0', 100), running: [cell('a/c#0')] }, { ...tight, memory: 312 * MIB }), undefined)
  })

  describe('in the cell runtime', () => {
    let b: Bundler
    let runtime: CellRuntime
    let contributed: Resources
    before(async () => { b = await createBundler() })
    after(() => { b.dir.remove() })
    beforeEach(() => {
      contributed = { cpu: 1, memory: 1024 * MIB, cells: 1 }
      runtime = createCellRuntime({ heartbeatInterval: 200, admit: createContributionGuard(() => contributed) })
      runtime.start()
    })
    afterEach(async () => { await runtime.stop() })

    it('refuses a transform beyond the contribution, counting transforms under way; nothing changes', async () => {
      const bundle = await b.bundle('shop/counter', COUNTER)
      const results = await Promise.allSettled([0, 1].map(async i => await runtime.transform(`shop/counter#${i}`, bundle, { owner: b.owner.publicKey })))
      const refused = results.filter(r => r.status === 'rejected')
      assert.equal(refused.length, 1, 'two transforms at once on one contributed cell: one is refused')
      assert.match(String((refused[0] as PromiseRejectedResult).reason), /no room on this node for shop\/counter#\d: this node contributes 1 cell and already runs or starts 1/)
      assert.equal(runtime.cells().filter(c => c.status === 'transformed').length, 1)
      const running = runtime.cells().find(c => c.status === 'transformed')?.address as string
      const other = running === 'shop/counter#0' ? 'shop/counter#1' : 'shop/counter#0'
      assert.notEqual(runtime.cell(other)?.status, 'transformed')
      // replacing the running cell's code is not a new cell
      await runtime.transform(running, bundle, { owner: b.owner.publicKey, replace: true })
      // more room (stem contribute): the refused cell may start
      contributed = { ...contributed, cells: 2 }
      await runtime.transform(other, bundle, { owner: b.owner.publicKey })
      assert.equal(runtime.cells().filter(c => c.status === 'transformed').length, 2)
    })

    it('frees the room of a reverted cell', async () => {
      const bundle = await b.bundle('shop/counter', COUNTER)
      await runtime.transform('shop/counter#0', bundle, { owner: b.owner.publicKey })
      await assert.rejects(runtime.transform('shop/counter#1', bundle, { owner: b.owner.publicKey }), /contributes 1 cell/)
      await runtime.revert('shop/counter#0')
      await runtime.transform('shop/counter#1', bundle, { owner: b.owner.publicKey })
    })
  })
})
