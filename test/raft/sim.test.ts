// The deterministic Raft simulation, a few hundred seeds (CI runs thousands through
// `npm run sim:raft`).
import assert from 'node:assert/strict'
import { runSeed } from '../../src/raft/sim/simulation.js'
import { SafetyChecker } from '../../src/raft/sim/safety-checker.js'
import { EntryType } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'

describe('sim: deterministic Raft simulation', () => {
  it('finds no safety, liveness or linearizability violation in 300 seeds', async () => {
    const failures: string[] = []
    let operations = 0
    let committed = 0
    for (let seed = 1; seed <= 300; seed++) {
      const r = await runSeed(seed)
      operations += r.operations
      committed += r.committed
      if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join('; ')}`)
    }
    assert.deepEqual(failures, [])
    // the seeds did real work
    assert.ok(operations > 3000, `${operations} operations`)
    assert.ok(committed > 3000, `${committed} entries committed`)
  })

  it('replays a seed exactly', async () => {
    const lines1: string[] = []
    const lines2: string[] = []
    const a = await runSeed(4242, { trace: l => lines1.push(l) })
    const b = await runSeed(4242, { trace: l => lines2.push(l) })
    assert.deepEqual(a, b)
    assert.deepEqual(lines1, lines2)
    assert.ok(lines1.length > 5)
  })
})

describe('sim: Raft on the disk WAL over a simulated disk with storage faults', () => {
  it('finds no violation in 100 seeds, whose disks crashed at writes and had bits flipped', async () => {
    const failures: string[] = []
    let crashesAtWrites = 0
    let flipsRefused = 0
    let committed = 0
    for (let seed = 1; seed <= 100; seed++) {
      const r = await runSeed(seed, {
        storage: 'disk',
        trace: line => {
          if (line.includes('(disk lost power:')) crashesAtWrites++
          if (line.endsWith(' refused')) flipsRefused++
        }
      })
      committed += r.committed
      if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join('; ')}`)
    }
    assert.deepEqual(failures, [])
    // the faults happened and the seeds did real work
    assert.ok(crashesAtWrites > 50, `${crashesAtWrites} crashes at writes`)
    assert.ok(flipsRefused > 20, `${flipsRefused} bit flips refused`)
    assert.ok(committed > 1000, `${committed} entries committed`)
  })

  it('replays a disk seed exactly', async () => {
    const lines1: string[] = []
    const lines2: string[] = []
    const a = await runSeed(486, { storage: 'disk', trace: l => lines1.push(l) })
    const b = await runSeed(486, { storage: 'disk', trace: l => lines2.push(l) })
    assert.deepEqual(a, b)
    assert.deepEqual(lines1, lines2)
    assert.ok(lines1.some(l => l.includes('(disk lost power:')))
  })
})

describe('sim: safety checker', () => {
  const entry = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index, term]) })

  it('flags a snapshot install that keeps a suffix conflicting with the snapshot', () => {
    const checker = new SafetyChecker()
    const log = [0, 1, 1, 1, 1, 1] // term at index i
    checker.onPersist('n1', [1, 2, 3, 4, 5].map(i => entry(i, 1)), i => log[i])
    // a snapshot at 3/2 whose storage kept 4/1 and 5/1 (logged after term 1 at 3)
    log[3] = 2
    checker.onPersistSnapshot('n1', 3, 5, i => log[i])
    assert.match(checker.violations.join('\n'), /log matching: after installing a snapshot at 3, n1 keeps 4\/1 after term 2/)
  })

  it('flags a log recovered at a restart that does not chain as its entries were logged', () => {
    const checker = new SafetyChecker()
    const log = [0, 1, 1, 1, 1, 1]
    checker.onPersist('n1', [1, 2, 3, 4, 5].map(i => entry(i, 1)), i => log[i])
    checker.onRecover('n1', 3, 5, i => log[i])
    assert.deepEqual(checker.violations, [])
    // recovery kept 4/1 and 5/1 past an installed snapshot at 3/2
    log[3] = 2
    checker.onRecover('n1', 3, 5, i => log[i])
    assert.match(checker.violations.join('\n'), /log matching: after a restart, n1 keeps 4\/1 after term 2/)
  })

  it('accepts a snapshot install that drops the suffix, or keeps a matching one', () => {
    const checker = new SafetyChecker()
    const log = [0, 1, 1, 1, 1, 1]
    checker.onPersist('n1', [1, 2, 3, 4, 5].map(i => entry(i, 1)), i => log[i])
    checker.onPersistSnapshot('n1', 3, 5, i => log[i])
    checker.onPersistSnapshot('n1', 5, 5, i => log[i])
    assert.deepEqual(checker.violations, [])
  })
})
