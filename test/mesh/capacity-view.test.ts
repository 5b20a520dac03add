import assert from 'node:assert/strict'
import { CapacityView } from '../../src/mesh/capacity-view.js'
import type { CapacityAdvert } from '../../src/mesh/capacity.js'

const advert = (peer: string, version: bigint, extra: Partial<CapacityAdvert> = {}): CapacityAdvert => ({
  peer,
  addrs: ['/ip4/127.0.0.1/tcp/1'],
  contributed: { cpu: 2, memory: 2 ** 31, cells: 50 },
  free: { cpu: 2, memory: 2 ** 31, cells: 50 },
  version,
  leaving: false,
  interval: 1000,
  ...extra
})

describe('mesh/capacity-view', () => {
  let clock: number
  let view: CapacityView
  let events: string[]
  beforeEach(() => {
    clock = 1_000_000
    view = new CapacityView({ missedPeriods: 3, now: () => clock })
    events = []
    view.addEventListener('peer:seen', e => events.push(`seen ${e.detail.id}`))
    view.addEventListener('peer:updated', e => events.push(`updated ${e.detail.id}`))
    view.addEventListener('peer:lost', e => events.push(`lost ${e.detail.id} ${e.detail.reason}`))
  })

  it('sees, refreshes and updates peers; older versions change nothing', () => {
    assert.equal(view.apply(advert('a', 10n)), 'seen')
    clock += 500
    assert.equal(view.apply(advert('a', 10n)), 'refreshed')
    assert.equal(view.get('a')?.lastSeen, clock)
    assert.equal(view.apply(advert('a', 11n, { contributed: { cpu: 1, memory: 1, cells: 1 } })), 'updated')
    assert.equal(view.apply(advert('a', 9n, { contributed: { cpu: 9, memory: 9, cells: 9 } })), 'stale')
    assert.equal(view.get('a')?.capacity.cpu, 1)
    assert.deepEqual(events, ['seen a', 'updated a'])
  })

  it('expires a peer after the missed heartbeats, and takes it back when it returns', () => {
    view.apply(advert('a', 10n))
    view.apply(advert('b', 10n, { interval: 5000 }))
    clock += 3000
    assert.deepEqual(view.expire(), [])
    clock += 1
    assert.deepEqual(view.expire(), ['a'])
    assert.equal(view.get('a'), undefined)
    assert.ok(view.get('b') != null, 'b has a longer interval')
    assert.equal(view.apply(advert('a', 10n)), 'seen')
    assert.deepEqual(events, ['seen a', 'seen b', 'lost a expired', 'seen a'])
  })

  it('drops a leaving peer at once, and a late heartbeat cannot bring it back', () => {
    view.apply(advert('a', 10n))
    assert.equal(view.apply(advert('a', 11n, { leaving: true })), 'left')
    assert.equal(view.get('a'), undefined)
    assert.equal(view.apply(advert('a', 10n)), 'stale')
    assert.equal(view.apply(advert('a', 11n)), 'stale')
    assert.equal(view.hasLeft('a'), true)
    assert.equal(view.hasLeft('b'), false, 'a peer never seen has not left')
    assert.equal(view.apply(advert('a', 12n)), 'seen', 'a restarted node has a newer version')
    assert.equal(view.hasLeft('a'), false, 'back after a restart')
    assert.deepEqual(events, ['seen a', 'lost a left', 'seen a'])
  })

  it('nextExpiry: when the earliest known peer falls due, pushed out by its adverts', () => {
    assert.equal(view.nextExpiry(), undefined, 'no peer, nothing to expire')
    view.apply(advert('a', 10n))
    view.apply(advert('b', 10n, { interval: 5000 }))
    assert.equal(view.nextExpiry(), 1_000_000 + 3000 + 1, 'a: 3 missed heartbeats of 1 s')
    clock += 2000
    view.apply(advert('a', 10n))
    assert.equal(view.nextExpiry(), 1_002_000 + 3000 + 1, 'a refreshed: later')
    clock = 1_005_001
    assert.deepEqual(view.expire(), ['a'], 'due at the moment nextExpiry gave')
    assert.equal(view.nextExpiry(), 1_000_000 + 15_000 + 1, 'b is next')
  })
})
