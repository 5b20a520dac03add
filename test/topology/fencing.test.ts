import assert from 'node:assert/strict'
import { fenceRefusal, followedPrimary, leaseHolds, staleEpochRefusal, supersededPrimaries, unwantedClones, unwantedInstances } from '../../src/topology/fencing.js'
import type { LocalPrimary } from '../../src/topology/fencing.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'

function announcement (over: Partial<AppAnnouncement> = {}): AppAnnouncement {
  return {
    app: 'shop',
    owner: 'owner',
    leader: 'L',
    term: 1n,
    version: 1n,
    members: ['A', 'B', 'L'],
    instances: [
      { address: 'shop/counter#0', node: 'A', epoch: 1n, state: 'transformed', clones: ['B'], clonesReady: [] },
      { address: 'shop/counter#1', node: 'B', epoch: 1n, state: 'starting', clones: ['A'], clonesReady: [] }
    ],
    cells: [{ name: 'counter', replicas: 2, timeout: 1000 }],
    routes: [],
    reverted: false,
    ...over
  }
}

describe('fencing: which local instances an announcement no longer wants', () => {
  it('keeps instances placed here and other apps\' cells', () => {
    assert.deepEqual(unwantedInstances(announcement(), ['shop/counter#0', 'other/counter#0'], 'A'), [])
  })

  it('reverts an instance another node now runs (a returning node does not serve stale state)', () => {
    assert.deepEqual(unwantedInstances(announcement(), ['shop/counter#0'], 'C'), ['shop/counter#0'])
  })

  it('keeps an instance whose new primary has not started yet (its clone may be here)', () => {
    assert.deepEqual(unwantedInstances(announcement(), ['shop/counter#1'], 'C'), [])
  })

  it('reverts instances beyond replicas, of removed cells, and of a reverted app', () => {
    assert.deepEqual(unwantedInstances(announcement(), ['shop/counter#2', 'shop/gone#0'], 'A'), ['shop/counter#2', 'shop/gone#0'])
    assert.deepEqual(unwantedInstances(announcement({ reverted: true }), ['shop/counter#0'], 'A'), ['shop/counter#0'])
  })

  it('ignores addresses that are not instances', () => {
    assert.deepEqual(unwantedInstances(announcement(), ['shop/counter', 'shop'], 'A'), [])
  })
})

describe('fencing: which held clones an announcement no longer wants', () => {
  const now = 100_000
  const held = (address: string, over: { heldAt?: number, restored?: boolean } = {}): { address: string, heldAt: number, restored: boolean } =>
    ({ address, heldAt: over.heldAt ?? 0, restored: over.restored ?? false })

  it('keeps clones listed here, and the instance about to be promoted here', () => {
    // B is the clone of #0 and the primary of #1
    assert.deepEqual(unwantedClones(announcement(), [held('shop/counter#0'), held('shop/counter#1')], 'B', now, 10_000), [])
  })

  it('drops clones placed elsewhere now, of gone instances, of a reverted app; leaves other apps alone', () => {
    const mine = [held('shop/counter#0'), held('shop/counter#7'), held('other/x#0')]
    assert.deepEqual(unwantedClones(announcement(), mine, 'C', now, 10_000), ['shop/counter#0', 'shop/counter#7'])
    assert.deepEqual(unwantedClones(announcement({ reverted: true }), [held('shop/counter#0', { heldAt: now })], 'B', now, 10_000), ['shop/counter#0'])
  })

  it('keeps a fresh hold the announcement does not list yet; drops a stale one', () => {
    assert.deepEqual(unwantedClones(announcement(), [held('shop/counter#0', { heldAt: now - 500 })], 'C', now, 10_000), [])
    assert.deepEqual(unwantedClones(announcement(), [held('shop/counter#0', { heldAt: now - 10_000 })], 'C', now, 10_000), ['shop/counter#0'])
  })

  it('keeps a copy restored from disk while its instance does not run elsewhere (the leader may start it from it), however old', () => {
    const restored = (address: string): ReturnType<typeof held> => held(address, { heldAt: 0, restored: true })
    // #1 is only starting on B: C's copy may be the newest one
    assert.deepEqual(unwantedClones(announcement(), [restored('shop/counter#1')], 'C', now, 10_000), [])
    // #0 runs on A: the leader chose; C's copy goes
    assert.deepEqual(unwantedClones(announcement(), [restored('shop/counter#0')], 'C', now, 10_000), ['shop/counter#0'])
    // recovering (no node yet): kept; an instance scaled away: dropped
    const waiting = announcement({ instances: [{ address: 'shop/counter#0', node: '', epoch: 1n, state: 'recovering', clones: [], clonesReady: [] }] })
    assert.deepEqual(unwantedClones(waiting, [restored('shop/counter#0'), restored('shop/counter#5')], 'C', now, 10_000), ['shop/counter#5'])
  })
})

describe('fencing: the primary\'s lease', () => {
  it('holds for less than leaseMs after the confirmed request was sent, on the primary\'s clock', () => {
    assert.equal(leaseHolds(1000, 1499, 500), true)
    assert.equal(leaseHolds(1000, 1500, 500), false)
    // a primary stalled after asking finds the confirmation too old when it runs again
    assert.equal(leaseHolds(1000, 3000, 500), false)
  })
})

describe('fencing: the fence a recovery\'s inventory sets on a holder', () => {
  it('refuses states of an older epoch from any primary but the one the recovery starts or the holder\'s table places in that epoch', () => {
    const fence = { epoch: 3, primary: 'B' }
    assert.equal(fenceRefusal(undefined, 'A', 1), undefined)
    assert.match(fenceRefusal(fence, 'A', 2) ?? '', /^fenced: a recovery of epoch 3 asked this node's copy; a state of epoch 2 from A is refused$/)
    // the new primary's own table may lag its start
    assert.equal(fenceRefusal(fence, 'B', 2), undefined)
    assert.equal(fenceRefusal(fence, 'A', 3), undefined)
    // a later placement's primary the holder's table already names
    assert.equal(fenceRefusal(fence, 'C', 2, { peer: 'C', epoch: 4 }), undefined)
    // the holder's table still naming the deposed primary in its old epoch does not lift the fence
    assert.match(fenceRefusal(fence, 'A', 2, { peer: 'A', epoch: 2 }) ?? '', /fenced/)
  })
})

describe('fencing: a step of a superseded placement', () => {
  it('is refused where a newer epoch of the instance is known; a step without an epoch, or of the newest, proceeds', () => {
    assert.match(staleEpochRefusal('shop/counter#0', 2, 3) ?? '', /^shop\/counter#0 is placed in epoch 3 already: a step of epoch 2 comes from a deposed leader$/)
    assert.equal(staleEpochRefusal('shop/counter#0', 3, 3), undefined)
    assert.equal(staleEpochRefusal('shop/counter#0', 4, 3), undefined)
    assert.equal(staleEpochRefusal('shop/counter#0', undefined, 3), undefined)
  })
})

describe('fencing: the local primaries the committed app state shows superseded', () => {
  it('are those a newer epoch places on another node, whose lease lapsed', () => {
    const state = { placement: { counter: [{ primary: 'B' }, { primary: 'A' }, { primary: null }] }, epochs: { 'shop/counter#0': 3, 'shop/counter#1': 3, 'shop/counter#2': 4 } }
    const local = (address: string, epoch: number, lease = false): LocalPrimary => ({ address, epoch, leaseHolds: lease })
    // woken from a stall: epoch 3 moved #0 to B
    assert.deepEqual(supersededPrimaries(state, [local('shop/counter#0', 2)], 'A'), ['shop/counter#0'])
    // still placed here, or already serving the newest epoch
    assert.deepEqual(supersededPrimaries(state, [local('shop/counter#1', 2), local('shop/counter#0', 3)], 'A'), [])
    // no primary placed (being recovered): another node may start from any copy
    assert.deepEqual(supersededPrimaries(state, [local('shop/counter#2', 3)], 'A'), ['shop/counter#2'])
    // a primary still confirming its states is being handed over: the leader's step ends it
    assert.deepEqual(supersededPrimaries(state, [local('shop/counter#0', 2, true)], 'A'), [])
    // an instance the state does not have (scaled down): the announcements revert it
    assert.deepEqual(supersededPrimaries(state, [local('shop/counter#7', 1)], 'A'), [])
  })
})

describe('fencing: the primary a clone follows', () => {
  it('is the announced one, or the one the hold named in a newer placement', () => {
    assert.equal(followedPrimary(undefined, undefined), undefined)
    assert.equal(followedPrimary({ peer: 'A', epoch: 2 }, undefined), 'A')
    assert.equal(followedPrimary(undefined, { primary: 'B', epoch: 3 }), 'B')
    assert.equal(followedPrimary({ peer: 'A', epoch: 2 }, { primary: 'B', epoch: 3 }), 'B')
    assert.equal(followedPrimary({ peer: 'C', epoch: 4 }, { primary: 'B', epoch: 3 }), 'C')
    assert.equal(followedPrimary({ peer: 'A', epoch: 2 }, { primary: '', epoch: 0 }), 'A')
  })
})
