import assert from 'node:assert/strict'
import { WalkSchedule } from '../../src/mesh/walk-schedule.js'

/** the ticks out of 1..`to` at which a walk is due */
function walkTicks (s: WalkSchedule, from: number, to: number, quiet: boolean): number[] {
  const out: number[] = []
  for (let t = from; t <= to; t++) if (s.due(t, quiet)) out.push(t)
  return out
}

describe('discovery walk schedule (pure)', () => {
  it('walks every few ticks while the mesh changes', () => {
    assert.deepEqual(walkTicks(new WalkSchedule(2, 16), 1, 9, false), [1, 3, 5, 7, 9])
  })

  it('doubles the gap between walks once the mesh is quiet, up to the longest gap', () => {
    assert.deepEqual(walkTicks(new WalkSchedule(2, 16), 1, 80, true), [1, 5, 13, 29, 45, 61, 77])
  })

  it('walks at the next tick after a change, then every few ticks again', () => {
    const s = new WalkSchedule(2, 16)
    assert.deepEqual(walkTicks(s, 1, 40, true), [1, 5, 13, 29])
    s.changed(40)
    assert.deepEqual(walkTicks(s, 41, 46, false), [41, 43, 45])
  })
})
