import assert from 'node:assert/strict'
import { nextTickDelay } from '../../src/raft/multi/tick-schedule.js'
import { PeerLiveness } from '../../src/raft/multi/peer-liveness.js'

describe('raft host tick schedule (pure)', () => {
  const base = { tickMs: 25, now: 10_000, maxSleepMs: 500 }

  it('ticks every tick while a group ticks, whatever the liveness work', () => {
    assert.equal(nextTickDelay({ ...base, active: true, livenessDue: 10_400 }), 25)
    assert.equal(nextTickDelay({ ...base, active: true, livenessDue: Infinity }), 25)
  })

  it('sleeps until the liveness work is due when every group is quiet', () => {
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: 10_125 }), 125)
    // a fraction of a ms is rounded up: the work is due when the timer fires
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: 10_100.2 }), 101)
  })

  it('never sleeps less than a tick (work overdue) nor more than the longest sleep', () => {
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: 9_000 }), 25)
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: 10_010 }), 25)
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: 20_000 }), 500)
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: Infinity }), 500)
    assert.equal(nextTickDelay({ ...base, active: false, livenessDue: NaN }), 500)
    // a longest sleep below a tick is a tick
    assert.equal(nextTickDelay({ ...base, maxSleepMs: 5, active: false, livenessDue: 20_000 }), 25)
  })
})

describe('peer liveness: when its work next falls due (pure)', () => {
  it('is never due with no peer tracked', () => {
    const l = new PeerLiveness(125, 500)
    assert.equal(l.nextDue(), Infinity)
  })

  it('is due at once for a peer never sent to, then a beacon interval after the last send', () => {
    const l = new PeerLiveness(125, 500)
    l.track(new Set(['a']), 1_000)
    assert.ok(l.nextDue() <= 1_000)
    assert.deepEqual(l.dueForBeacon(1_000), ['a'])
    l.sent('a', 1_000)
    l.heard('a', 1_000)
    assert.equal(l.nextDue(), 1_125)
    assert.deepEqual(l.dueForBeacon(1_124), [])
    assert.deepEqual(l.dueForBeacon(1_125), ['a'])
  })

  it('is due when the quietest live peer would cross the silence limit, and reports it silent then', () => {
    const l = new PeerLiveness(125, 500)
    l.track(new Set(['a', 'b']), 0)
    l.heard('a', 1_000)
    l.heard('b', 1_200)
    // a beacon interval is far off: the silence of 'a' is the next thing due
    l.sent('a', 10_000)
    l.sent('b', 10_000)
    assert.equal(l.nextDue(), 1_501)
    assert.deepEqual(l.newlySilent(1_500), [])
    assert.deepEqual(l.newlySilent(l.nextDue()), ['a'])
    // a peer reported silent is not due again until heard; 'b' is next
    assert.equal(l.nextDue(), 1_701)
    // heard again: back from silence (its host wakes the quiet groups it is a member of), once
    assert.equal(l.heard('a', 1_600), true)
    assert.equal(l.nextDue(), 1_701)
    assert.equal(l.heard('a', 1_650), false)
    assert.equal(l.heard('b', 1_650), false)
  })
})

describe('peer liveness with an outside detector covering peers (pure)', () => {
  const covers = new Set<string>()
  const make = (): PeerLiveness => new PeerLiveness(125, 500, { intervalMs: 2_000, timeoutMs: 8_000, covers: p => covers.has(p) })
  beforeEach(() => { covers.clear() })

  it('beacons a covered peer every covered interval and judges its silence by the covered limit', () => {
    const l = make()
    covers.add('a')
    l.track(new Set(['a', 'b']), 0)
    l.refresh(0)
    l.sent('a', 1_000)
    l.sent('b', 1_000)
    assert.deepEqual(l.dueForBeacon(1_125), ['b'])
    assert.equal(l.nextDue(), 501) // the uncovered peer's silence comes first
    assert.deepEqual(l.newlySilent(501), ['b'])
    assert.equal(l.nextDue(), 1_125)
    l.sent('b', 1_125)
    assert.equal(l.nextDue(), 1_250)
    l.sent('b', 2_999)
    assert.equal(l.nextDue(), 3_000)
    assert.deepEqual(l.dueForBeacon(3_000), ['a'])
    assert.deepEqual(l.newlySilent(7_999), [])
    assert.deepEqual(l.newlySilent(8_001), ['a'])
  })

  it('a peer the detector stops covering gets a fresh silence window and a beacon at once', () => {
    const l = make()
    covers.add('a')
    l.track(new Set(['a']), 0)
    l.refresh(0)
    l.sent('a', 0)
    covers.delete('a')
    l.refresh(3_000)
    // the host's timer fires at the next tick for it, not after its longest sleep
    assert.equal(nextTickDelay({ tickMs: 25, active: false, now: 3_000, livenessDue: l.nextDue(), maxSleepMs: 500 }), 25)
    assert.deepEqual(l.dueForBeacon(3_000), ['a'])
    assert.deepEqual(l.newlySilent(3_500), [])
    assert.deepEqual(l.newlySilent(3_501), ['a'])
  })

  it('takes the detector\'s verdicts: down once, and back when it is up again', () => {
    const l = make()
    l.track(new Set(['a']), 0)
    assert.equal(l.down('a'), true)
    assert.equal(l.isAlive('a'), false)
    assert.equal(l.down('a'), false)
    assert.deepEqual(l.newlySilent(10_000), [])
    assert.equal(l.heard('a', 10_000), true)
    assert.equal(l.isAlive('a'), true)
    assert.equal(l.down('unknown'), false)
  })
})
