// The autoscale decision of a stream consumer (streams/autoscale.ts), a pure function of
// the samples of its group's lag: one replica more after the lag stays over the threshold
// for the sustain window, one fewer after it stays idle for the idle window, never past
// min..max, nothing during the cooldown after a change, nothing in the band between idle
// and the threshold; an instance placement found no room for takes the step back.
import assert from 'node:assert/strict'
import { decideAutoscale, type AutoscaleMemory, type AutoscaleTiming } from '../../src/topology/streams/autoscale.js'
import type { AutoscaleSpec } from '../../src/topology/streams/stream-manifest.js'

const spec: AutoscaleSpec = { min: 1, max: 3, lag: 100 }
const timing: AutoscaleTiming = { sustainMs: 5000, idleMs: 30_000, cooldownMs: 10_000 }

/** feeds samples of `lag` every second from `from` to `to` ms; the replicas and memory after, and when they changed */
function feed (replicas: number, memory: AutoscaleMemory, lag: number | ((t: number) => number), from: number, to: number, unplaced: number | ((replicas: number) => number) = 0): { replicas: number, memory: AutoscaleMemory, changes: Array<[number, number]> } {
  const changes: Array<[number, number]> = []
  for (let t = from; t <= to; t += 1000) {
    const d = decideAutoscale(spec, replicas, { lag: typeof lag === 'number' ? lag : lag(t), unplaced: typeof unplaced === 'number' ? unplaced : unplaced(replicas) }, memory, t, timing)
    if (d.replicas !== replicas) { changes.push([t, d.replicas]); assert.ok(d.reason !== undefined) }
    replicas = d.replicas
    memory = d.memory
  }
  return { replicas, memory, changes }
}

describe('autoscale decision', () => {
  it('grows by one step only once the lag has stayed over the threshold for the sustain window', () => {
    const r = feed(1, {}, 500, 0, 4000)
    assert.deepEqual(r.changes, [], 'not before 5 s over')
    const after = feed(r.replicas, r.memory, 500, 5000, 5000)
    assert.deepEqual(after.changes, [[5000, 2]])
  })

  it('a single sample over the threshold, or a lag that dips under it, does not grow', () => {
    assert.deepEqual(feed(1, {}, t => t === 3000 ? 10_000 : 0, 0, 20_000).changes, [])
    // over for 4 s, under once, over for 4 s: never 5 s in a row
    assert.deepEqual(feed(1, {}, t => t === 4000 ? 50 : 500, 0, 8000).changes, [])
  })

  it('waits for the cooldown between steps, and stops at max', () => {
    const r = feed(1, {}, 1000, 0, 60_000)
    // 5 s over → 2; cooldown 10 s (the lag stayed over meanwhile) → 3 at 15 s; max 3
    assert.deepEqual(r.changes, [[5000, 2], [15_000, 3]])
    assert.equal(r.replicas, 3)
  })

  it('shrinks by one step after the idle window, down to min, with the cooldown between', () => {
    const r = feed(3, {}, 0, 0, 100_000)
    // the idle window starts again after a change: 30 s idle → 2, 30 s more → 1
    assert.deepEqual(r.changes, [[30_000, 2], [61_000, 1]])
    assert.equal(r.replicas, 1)
  })

  it('holds between idle and the threshold (hysteresis): no growth, no shrink', () => {
    // idle is at most a tenth of the threshold: 10 records; 11..100 moves nothing
    assert.deepEqual(feed(2, {}, 50, 0, 200_000).changes, [])
    assert.deepEqual(feed(2, {}, 100, 0, 200_000).changes, [])
    assert.deepEqual(feed(2, {}, 10, 0, 30_000).changes, [[30_000, 1]])
  })

  it('a lag going up and down around the threshold does not flap: at most one step per cooldown', () => {
    // 6 s over, 6 s idle, again and again
    const r = feed(1, {}, t => Math.floor(t / 6000) % 2 === 0 ? 1000 : 0, 0, 120_000)
    for (let i = 1; i < r.changes.length; i++) assert.ok(r.changes[i][0] - r.changes[i - 1][0] >= timing.cooldownMs, JSON.stringify(r.changes))
    // never idle for 30 s: it only grows
    assert.ok(r.changes.every(([, n], i) => n === 2 + i), JSON.stringify(r.changes))
  })

  it('an instance that found no room stops the growth and, after the cooldown, takes the step back', () => {
    const grown = feed(1, {}, 1000, 0, 5000)
    assert.equal(grown.replicas, 2)
    const r = feed(grown.replicas, grown.memory, 1000, 6000, 30_000, 1)
    assert.deepEqual(r.changes, [[15_000, 1]])
  })

  it('a lag that stays high while the mesh has no room for one more does not grow and shrink over and over', () => {
    // room for 1 instance only: the second one is never placed
    const r = feed(1, {}, 1000, 0, 120_000, n => n >= 2 ? 1 : 0)
    // grown at 5 s, taken back at 15 s, not tried again for 4 cooldowns (until 55 s), then again
    assert.deepEqual(r.changes, [[5000, 2], [15_000, 1], [55_000, 2], [65_000, 1], [105_000, 2], [115_000, 1]])
  })

  it('brings replicas out of bounds back within min..max at once', () => {
    assert.equal(decideAutoscale(spec, 0, { lag: 0, unplaced: 0 }, {}, 0, timing).replicas, 1)
    assert.equal(decideAutoscale(spec, 7, { lag: 10_000, unplaced: 0 }, { changedAt: 0 }, 1, timing).replicas, 3)
  })
})
