// The deterministic Raft simulation, a few hundred seeds (CI runs thousands through
// `npm run sim:raft`).
import assert from 'node:assert/strict'
import { runSeed } from '../../src/raft/sim/simulation.js'

describe('sim: deterministic Raft simulation', () => {
  it('finds no safety, liveness or linearizability violation in 300 seeds', () => {
    const failures: string[] = []
    let operations = 0
    let committed = 0
    for (let seed = 1; seed <= 300; seed++) {
      const r = runSeed(seed)
      operations += r.operations
      committed += r.committed
      if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join('; ')}`)
    }
    assert.deepEqual(failures, [])
    // the seeds did real work
    assert.ok(operations > 3000, `${operations} operations`)
    assert.ok(committed > 3000, `${committed} entries committed`)
  })

  it('replays a seed exactly', () => {
    const lines1: string[] = []
    const lines2: string[] = []
    const a = runSeed(4242, { trace: l => lines1.push(l) })
    const b = runSeed(4242, { trace: l => lines2.push(l) })
    assert.deepEqual(a, b)
    assert.deepEqual(lines1, lines2)
    assert.ok(lines1.length > 5)
  })
})
