// Rollback of a failed rollout in the app state machine: a publish that changes a cell's
// revision keeps the previous one; `rollback` restores it (state machine only — the
// controller proposes it when an instance's update fails) and records the cause.
import assert from 'node:assert/strict'
import { applyCommand, decodeCommand, encodeCommand } from '../../src/topology/app-state.js'
import type { AppCommand, AppState } from '../../src/topology/app-state.js'
import { applyAll } from './support/apply-all.js'
import { cellRevision } from '../../src/topology/cell-revision.js'
import { manifestHash } from '../../src/topology/manifest-canonical.js'
import type { AppManifest } from '../../src/topology/manifest.js'

const cell = (bundle: string, replicas = 1, timeout = 100): AppManifest['cells'][string] => ({ code: `./${bundle}.js`, replicas, clones: 1, memory: 16 * 2 ** 20, timeout, mailbox: 10, bundle })
const manifest = (cells: AppManifest['cells']): AppManifest => ({ app: 'shop', cells, routes: [] })
const alice = { owner: 'alice', ownerKey: 'a-key' }
let ids = 0
const id = (): string => `r${++ids}`
const publish = (m: AppManifest, at: number): AppCommand => ({ id: id(), kind: 'publish', ...alice, at, manifest: m })
const rollback = (cell: string, revision: string, error = 'Error: boom'): AppCommand => ({ id: id(), kind: 'rollback', cell, revision, error })

/** applyAll for commands that leave an app in place */
function run (commands: AppCommand[], from?: AppState): { state: AppState, results: ReturnType<typeof applyAll>['results'] } {
  const { state, results } = applyAll(commands, from)
  return { state: state as AppState, results }
}

describe('app state machine: rollback of a failed rollout', () => {
  const v1 = manifest({ counter: cell('h1'), cart: cell('c1') })
  const v2 = manifest({ counter: cell('h2', 2), cart: cell('c1') })

  it('a publish keeps the previous revision of the cells it changes, and only of those', () => {
    const { state } = run([publish(v1, 1), publish(v2, 2)])
    assert.deepEqual(Object.keys(state.previous), ['counter'])
    assert.equal(state.previous.counter.bundle, 'h1')
    assert.equal(state.previous.counter.at, 2)
    // a limit change is a new revision too
    const limits = run([publish(manifest({ counter: cell('h2', 2), cart: cell('c1', 1, 500) }), 3)], state).state
    assert.deepEqual(Object.keys(limits.previous), ['cart'])
    // a first publish and a new cell have nothing to roll back to
    assert.deepEqual(run([publish(v1, 1)]).state.previous, {})
    assert.deepEqual(run([publish(v1, 1), publish(manifest({ ...v1.cells, extra: cell('e1') }), 2)]).state.previous, {})
  })

  it('rollback restores the previous code and limits, keeps replicas, records the cause, and allows a retry', () => {
    const { state } = run([publish(v1, 1), publish(v2, 5)])
    const failed = cellRevision(v2.cells.counter)
    const { state: back, results } = run([rollback('counter', failed, 'Error: init failed (kept the previous code)')], state)
    assert.deepEqual(results.map(r => [r.ok, r.changed]), [[true, true]])
    assert.equal(back.manifest.cells.counter.bundle, 'h1')
    assert.equal(back.manifest.cells.counter.code, './h1.js')
    assert.equal(back.manifest.cells.counter.replicas, 2, 'replicas are not part of a revision')
    assert.equal(cellRevision(back.manifest.cells.counter), cellRevision(v1.cells.counter))
    assert.deepEqual(back.rolledBack.counter, { revision: failed, error: 'Error: init failed (kept the previous code)', at: 5 })
    assert.deepEqual(back.previous, {}, 'no second rollback from the restored revision')
    assert.equal(back.publishedHash, manifestHash(back.manifest))
    assert.equal(back.lastRequestAt, 5)
    // publishing the failed manifest again is a change (a retry); it clears the record
    const retry = run([publish(structuredClone(v2), 6)], back)
    assert.equal(retry.results[0].changed, true)
    assert.deepEqual(retry.state.rolledBack, {})
    assert.equal(retry.state.previous.counter.bundle, 'h1')
    // publishing the manifest that runs now changes nothing
    const same = run([publish(manifest({ counter: cell('h1', 2), cart: cell('c1') }), 7)], back)
    assert.equal(same.results[0].changed, false)
  })

  it('a rollback of a revision that no longer applies changes nothing; one without a previous revision is refused', () => {
    const { state } = run([publish(v1, 1), publish(v2, 2)])
    const failed = cellRevision(v2.cells.counter)
    const twice = run([rollback('counter', failed), rollback('counter', failed)], state)
    assert.deepEqual(twice.results.map(r => [r.ok, r.changed]), [[true, true], [true, false]])
    const stale = run([rollback('counter', 'other-revision'), rollback('ghost', failed)], state)
    assert.deepEqual(stale.results.map(r => [r.ok, r.changed]), [[true, false], [true, false]])
    assert.deepEqual(stale.state, state)
    const none = run([rollback('cart', cellRevision(v1.cells.cart))], state)
    assert.equal(none.results[0].ok, false)
    assert.match(none.results[0].error ?? '', /no previous revision/)
    assert.deepEqual(none.state, state)
    assert.equal(run([rollback('counter', failed)]).results[0].ok, false, 'no app')
  })

  it('rollback commands survive the log encoding; malformed ones are refused', () => {
    const cmd = rollback('counter', 'rev', 'why')
    assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd)
    for (const text of ['{"kind":"rollback","id":"1"}', '{"kind":"rollback","id":"1","cell":"c","revision":3,"error":"x"}', '{"kind":"rollback","id":"1","cell":"c","revision":"r"}']) {
      assert.throws(() => decodeCommand(new TextEncoder().encode(text)), /^Error: invalid app command: rollback/)
    }
  })
})
