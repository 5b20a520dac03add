// Following a published app until it is placed: the rules `stem publish` and the demo share.
import assert from 'node:assert/strict'
import type { ApiClient } from '../../src/api/client.js'
import { followPlacement, placementStatus, scaleGoal } from '../../src/cli/placement.js'
import type { PlacementGoal } from '../../src/cli/placement.js'
import type { Progress } from '../../src/cli/progress.js'
import type { AppCellsListing, CellListing } from '../../src/topology/app-table.js'

const goal: PlacementGoal = { app: 'shop', at: 7, cells: { counter: { replicas: 1, clones: 1, revision: 'r2' } } }

function instance (over: Partial<CellListing>): CellListing {
  return { address: 'shop/counter#0', node: 'A', state: 'transformed', clones: ['B'], clonesReady: ['B'], revision: 'r2', current: true, ...over }
}

/** an API client whose /v1/cells answers walk through `listings`, staying on the last */
function scripted (listings: CellListing[][], rollbacks: AppCellsListing['rollbacks'] = []): ApiClient {
  let i = 0
  return {
    get: async <T>() => [{ app: 'shop', cells: listings[Math.min(i++, listings.length - 1)], rollbacks }] as T,
    post: async () => { throw new Error('not used') }
  }
}

const quiet: Progress = { step: () => {}, done: () => {}, clear: () => {} }

describe('cli: following a publish until it is placed', () => {
  it('is ready only when every instance runs the published revision and every placed clone holds it', () => {
    assert.equal(placementStatus(goal, [instance({})]).ready, true)
    assert.equal(placementStatus(goal, [instance({ revision: 'r1', current: false })]).ready, false, 'still on the previous revision')
    assert.equal(placementStatus(goal, [instance({ clonesReady: [] })]).ready, false, 'clone not ready')
    assert.equal(placementStatus(goal, [instance({ state: 'starting' })]).ready, false)
    assert.match(placementStatus(goal, [instance({ clonesReady: [] })]).line, /counter 1\/1 running, clones 0\/1 ready/)
  })

  it('stem scale waits until the new replicas run, whatever their revision, and says "scaled" when it gives up', async () => {
    const scale = scaleGoal('shop', 'counter', 2, 9)
    const second = instance({ address: 'shop/counter#1', node: 'C', clones: [], clonesReady: [], revision: 'r1' })
    assert.equal(placementStatus(scale, [instance({})]).ready, false, 'the second replica is not there yet')
    assert.equal(placementStatus(scale, [instance({}), { ...second, state: 'starting' }]).ready, false, 'the second replica is starting')
    assert.equal(placementStatus(scale, [instance({}), second]).ready, true)
    assert.equal(placementStatus(scale, [instance({ clonesReady: [] }), second]).ready, false, 'a placed clone without its copy')
    assert.equal(placementStatus(scale, [instance({}), second]).line, 'placing shop: counter 2/2 running')
    const cells = await followPlacement(scripted([[instance({})], [instance({}), { ...second, state: 'starting' }], [instance({}), second]]), scale, quiet, { timeout: 10_000, interval: 1 })
    assert.equal(cells.length, 2)
    await assert.rejects(followPlacement(scripted([[instance({}), { ...second, state: 'starting' }]]), scale, quiet, { timeout: 20, interval: 1, action: 'scaled' }),
      /^CliError: shop was scaled but not placed after 0 s \(shop: counter 1\/2 running\)/)
  })

  it('waits through a failure the leader retries', async () => {
    const client = scripted([[instance({ state: 'failed' })], [instance({ state: 'starting' })], [instance({})]])
    const cells = await followPlacement(client, goal, quiet, { timeout: 10_000, interval: 1, failedGrace: 60_000 })
    assert.equal(cells[0].state, 'transformed')
  })

  it('fails with the instance and node when the failure lasts', async () => {
    const client = scripted([[instance({ state: 'failed', node: 'N1' })]])
    await assert.rejects(followPlacement(client, goal, quiet, { timeout: 10_000, interval: 1, failedGrace: 0 }), /shop\/counter#0 failed to start on N1/)
  })

  it('fails at once with the cause when its own rollout was rolled back', async () => {
    const client = scripted([[instance({ revision: 'r1', current: false })]], [{ cell: 'counter', revision: 'r2', error: 'boom on init', at: 7 }])
    await assert.rejects(followPlacement(client, goal, quiet, { timeout: 10_000, interval: 1 }), /shop\/counter: the new code failed and was rolled back.*boom on init/)
  })

  it('gives up after its timeout, naming what is missing', async () => {
    const client = scripted([[instance({ state: 'starting' })]])
    await assert.rejects(followPlacement(client, goal, quiet, { timeout: 20, interval: 5 }), /published but not placed after/)
  })
})
