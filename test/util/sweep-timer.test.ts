import assert from 'node:assert/strict'
import { SweepTimer } from '../../src/util/sweep-timer.js'
import { waitFor } from '../support/wait.js'

describe('util/sweep-timer', () => {
  it('sweeps only while something is pending, and arms again for the next item', async () => {
    const pending = new Set<number>()
    let sweeps = 0
    const timer = new SweepTimer(5, () => { sweeps++; pending.delete(Math.min(...pending)) }, () => pending.size > 0)
    try {
      assert.equal(timer.armed, false, 'nothing pending: no timer')
      pending.add(1).add(2)
      timer.arm()
      timer.arm()
      assert.equal(timer.armed, true)
      await waitFor(() => !timer.armed, { what: 'the timer to disarm once nothing is pending' })
      assert.equal(sweeps, 2, 'one sweep per item, none after the last')
      pending.add(3)
      timer.arm()
      await waitFor(() => !timer.armed, { what: 'the timer to disarm again' })
      assert.equal(sweeps, 3)
    } finally {
      timer.disarm()
    }
  })

})
