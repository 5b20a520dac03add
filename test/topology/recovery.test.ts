// recovery.ts: where an instance starts from when its leader does not see its primary
// running — never blank while a node that may hold a newer copy is missing.
import assert from 'node:assert/strict'
import { newestCopy, nextWaitMark, planRecovery, WAIT_GAP_MS } from '../../src/topology/recovery.js'
import type { Copy, Holder, RecoveryInput } from '../../src/topology/recovery.js'

const copy = (node: string, version: number, epoch = 1, running = false): Copy => ({ node, version, epoch, running })
const primary = (node: string, epoch = 1): Holder => ({ node, epoch, role: 'primary' })
const clone = (node: string, epoch = 1): Holder => ({ node, epoch, role: 'clone' })

function plan (over: Partial<RecoveryInput>): ReturnType<typeof planRecovery> {
  return planRecovery({ target: 'A', holders: [], answered: new Set(), copies: [], waitedMs: 0, waitBoundMs: 10_000, ...over })
}

describe('recovery: where an instance without a running primary starts from', () => {
  it('a new instance (no holder, or every holder answered with nothing) starts blank', () => {
    assert.deepEqual(plan({ answered: new Set(['A']) }), { kind: 'blank' })
    assert.deepEqual(plan({ holders: [primary('A'), clone('B')], answered: new Set(['A', 'B']) }), { kind: 'blank' })
  })

  it('whole-mesh restart: every holder answers, the newest copy wins wherever it is', () => {
    const holders = [primary('A'), clone('B')]
    assert.deepEqual(plan({ holders, answered: new Set(['A', 'B']), copies: [copy('A', 10), copy('B', 9)] }), { kind: 'promote', copy: copy('A', 10), missing: [] })
    assert.deepEqual(plan({ holders, answered: new Set(['A', 'B']), copies: [copy('A', 9), copy('B', 10)] }), { kind: 'copy', copy: copy('B', 10), missing: [] })
    // a newer epoch wins over a higher version (a stale copy from before a failover)
    assert.deepEqual(plan({ holders: [...holders, primary('B', 2)], answered: new Set(['A', 'B']), copies: [copy('A', 50, 1), copy('B', 12, 2)] }).kind, 'copy')
  })

  it('a primary already running on the target is adopted', () => {
    assert.deepEqual(plan({ holders: [primary('A')], answered: new Set(['A']), copies: [copy('A', 3, 1, true)] }), { kind: 'running' })
  })

  it('a primary running on the target is adopted when its clone, asked a moment later, reports a higher version of the same epoch', () => {
    // the inventories are taken one after the other while the primary keeps serving: copying
    // the clone's state over it would drop what it acknowledged meanwhile (streams kill -9 test)
    const holders = [primary('A'), clone('B')]
    assert.deepEqual(plan({ holders, answered: new Set(['A', 'B']), copies: [copy('A', 1668, 1, true), copy('B', 1669, 1)] }), { kind: 'running' })
    // one of an older epoch is not: a newer epoch's copy wins
    assert.deepEqual(plan({ holders: [...holders, primary('B', 2)], answered: new Set(['A', 'B']), copies: [copy('A', 1668, 1, true), copy('B', 1, 2)] }).kind, 'copy')
  })

  it('a deposed primary still running on the target is not adopted while a later epoch\'s holders are missing', () => {
    // A ran epoch 1, was cut off while epoch 2 ran on B (clone C); the placement now puts it back on A
    const holders = [primary('A', 1), clone('B', 1), primary('B', 2), clone('C', 2), primary('A', 3)]
    const input = { holders, answered: new Set(['A']), copies: [copy('A', 19, 1, true)] }
    assert.deepEqual(plan({ ...input, waitedMs: 500 }), { kind: 'wait', missing: ['B', 'C'] })
    // B answers with epoch 2's newer state: it goes to A, whose old state is replaced
    assert.deepEqual(plan({ ...input, answered: new Set(['A', 'B']), copies: [copy('A', 19, 1, true), copy('B', 25, 2)] }), { kind: 'copy', copy: copy('B', 25, 2), missing: ['C'] })
  })

  it('an epoch whose clones answered without a copy of it is not covered: a later placement may have dropped them (sim:mesh seed 1857)', () => {
    // A ran epoch 1 and was cut off; epoch 2 ran on B with clone C, then without clones (C
    // dropped its copy) and acknowledged on B's fsync alone; epoch 3 puts it back on A
    const holders = [primary('A', 1), clone('B', 1), primary('B', 2), clone('C', 2), primary('A', 3), clone('B', 3)]
    const input = { holders, answered: new Set(['A', 'C']), copies: [copy('A', 0, 1, true)] }
    assert.deepEqual(plan({ ...input, waitedMs: 500 }), { kind: 'wait', missing: ['B'] })
    // C holds epoch 2's state: what B acknowledged is there, nothing to wait for
    assert.deepEqual(plan({ ...input, copies: [copy('A', 0, 1, true), copy('C', 6, 2)], waitedMs: 500 }), { kind: 'copy', copy: copy('C', 6, 2), missing: ['B'] })
  })

  it('clones placed side by side cover their epoch only if each holds a copy of it: a reply waited for either (sim:mesh seed 1321, two clones)', () => {
    // B ran epoch 1 with clones A and C; cut off from A, it acknowledged on C, which a later
    // placement of the epoch dropped (it left); epoch 2 puts the instance on A
    const paired = (node: string): Holder => ({ ...clone(node, 1), paired: true })
    const holders = [primary('B', 1), paired('A'), paired('C'), primary('A', 2)]
    const input = { holders, answered: new Set(['A', 'C']), copies: [copy('A', 7, 1)] }
    assert.deepEqual(plan({ ...input, waitedMs: 500 }), { kind: 'wait', missing: ['B'] })
    // both hold a copy of the epoch: the newest of them has every acknowledged state
    assert.deepEqual(plan({ ...input, copies: [copy('A', 7, 1), copy('C', 9, 1)], waitedMs: 500 }), { kind: 'copy', copy: copy('C', 9, 1), missing: ['B'] })
    // one clone at a time (not paired): the one with a copy covers it, as before
    assert.deepEqual(plan({ ...input, holders: [primary('B', 1), clone('A'), clone('C'), primary('A', 2)], waitedMs: 500 }), { kind: 'promote', copy: copy('A', 7, 1), missing: ['B'] })
  })

  it('only a clone of the epoch\'s latest placement covers it: one dropped earlier holds only what came before (sim:mesh seeds 135 and 21599)', () => {
    const dropped = (node: string): Holder => ({ ...clone(node, 1), dropped: true })
    // B ran epoch 1 with clone C, then A, then none (A left): it acknowledged alone and crashed
    const holders = [{ ...primary('B', 1), alone: true }, dropped('C'), dropped('A'), primary('C', 2)]
    const input = { target: 'C', holders, answered: new Set(['A', 'C']), copies: [copy('C', 36, 1)] }
    assert.deepEqual(plan({ ...input, waitedMs: 500 }), { kind: 'wait', missing: ['B'] })
    // B back with its copy: the newest wins
    assert.deepEqual(plan({ ...input, answered: new Set(['A', 'B', 'C']), copies: [copy('C', 36, 1), copy('B', 40, 1)], waitedMs: 500 }), { kind: 'copy', copy: copy('B', 40, 1), missing: [] })
    // a clone placed later that holds a copy of the epoch covers it
    assert.deepEqual(plan({ ...input, holders: [{ ...primary('B', 1), alone: true }, dropped('C'), dropped('A'), clone('D', 1), primary('C', 2)], answered: new Set(['A', 'C', 'D']), copies: [copy('C', 36, 1), copy('D', 40, 1)], waitedMs: 500 }), { kind: 'copy', copy: copy('D', 40, 1), missing: ['B'] })
    // but not one placed again after its drop: its copy may be from before (seed 21599)
    const readded: Holder = { ...clone('A', 1), readded: true }
    assert.deepEqual(plan({ ...input, holders: [{ ...primary('B', 1), alone: true }, dropped('C'), readded, primary('C', 2)], copies: [copy('C', 36, 1), copy('A', 3, 1)], waitedMs: 500 }), { kind: 'wait', missing: ['B'] })
  })

  it('every clone the epoch ever had holds a copy of it and its primary never answered alone: covered, a clone placed again included (chaos seed 7: 60 s waiting for a stalled primary)', () => {
    // P ran epoch 8 with M, then CH (M stalled), then M again (CH stalled); P stalls
    const holders = [{ ...primary('P', 8), alone: false }, { ...clone('CH', 8), dropped: true }, { ...clone('M', 8), readded: true }]
    const input = { target: 'M', holders, answered: new Set(['M', 'CH']), copies: [copy('M', 7491, 8), copy('CH', 6918, 8)], waitedMs: 500 }
    assert.deepEqual(plan(input), { kind: 'promote', copy: copy('M', 7491, 8), missing: ['P'] })
    // the dropped clone's copy is gone (its keep ended): what it confirmed may be newer than M's
    assert.deepEqual(plan({ ...input, copies: [copy('M', 7491, 8)] }), { kind: 'wait', missing: ['P'] })
    // or the dropped clone is away
    assert.deepEqual(plan({ ...input, answered: new Set(['M']), copies: [copy('M', 7491, 8)] }), { kind: 'wait', missing: ['CH', 'P'] })
    // or a placement left P without a clone: it may have acknowledged alone
    assert.deepEqual(plan({ ...input, holders: [{ ...primary('P', 8), alone: true }, ...holders.slice(1)] }), { kind: 'wait', missing: ['P'] })
    // or the holders are from an earlier Stem, which did not record that
    assert.deepEqual(plan({ ...input, holders: [primary('P', 8), ...holders.slice(1)] }), { kind: 'wait', missing: ['P'] })
  })

  it('no copy anywhere, a holder away: waits (recovering), then says lost — not lost at once (sim:mesh seed 54: a new instance whose clone was cut off)', () => {
    const holders = [primary('A', 1), clone('C', 1)]
    assert.deepEqual(plan({ holders, answered: new Set(['A']), waitedMs: 500 }), { kind: 'wait', missing: ['C'] })
    assert.deepEqual(plan({ holders, answered: new Set(['A']), waitedMs: 10_000 }), { kind: 'lost', missing: ['C'] })
    assert.deepEqual(plan({ holders, answered: new Set(['A', 'C']), waitedMs: 500 }), { kind: 'blank' })
  })

  it('never blank while the only holder is missing: waits (recovering), then says lost', () => {
    const holders = [primary('P')]
    assert.deepEqual(plan({ holders, answered: new Set(['A']), waitedMs: 500 }), { kind: 'wait', missing: ['P'] })
    assert.deepEqual(plan({ holders, answered: new Set(['A']), waitedMs: 10_000 }), { kind: 'lost', missing: ['P'] })
    // the owner accepts the loss: blank, by their word
    assert.deepEqual(plan({ holders, answered: new Set(['A']), waitedMs: 10_000, acceptLoss: true }), { kind: 'blank' })
  })

  it('a copy damaged on disk is not used, and makes "no copy" lost rather than blank', () => {
    const damaged: Copy = { node: 'A', version: -1, epoch: 0, running: false, damaged: true }
    assert.deepEqual(plan({ holders: [primary('A')], answered: new Set(['A']), copies: [damaged] }), { kind: 'lost', missing: [] })
    assert.deepEqual(plan({ holders: [primary('A'), clone('B')], answered: new Set(['A', 'B']), copies: [damaged, copy('B', 3)] }), { kind: 'copy', copy: copy('B', 3), missing: [] })
  })

  it('a clone dropped for a new one need not answer once the new one holds a copy: its node may be gone for good (a kill -9 of the clone\'s node, then of the primary\'s)', () => {
    const dropped = (node: string): Holder => ({ ...clone(node, 1), dropped: true })
    // epoch 1: P with clone L; L's node died and N was placed as the clone; then P died
    const holders = [primary('P', 1), dropped('L'), clone('N', 1), primary('N', 2)]
    assert.deepEqual(plan({ target: 'N', holders, answered: new Set(['N']), copies: [copy('N', 12, 1)] }), { kind: 'promote', copy: copy('N', 12, 1), missing: ['L', 'P'] })
    // N holds nothing yet (the primary never reached it): L may hold the newest
    assert.deepEqual(plan({ target: 'N', holders, answered: new Set(['N']), copies: [], waitedMs: 500 }), { kind: 'wait', missing: ['L', 'P'] })
    // clones placed side by side: every one of them must answer, dropped or not
    const paired = [primary('P', 1), { ...dropped('L'), paired: true }, { ...clone('N', 1), paired: true }, primary('N', 2)]
    assert.deepEqual(plan({ target: 'N', holders: paired, answered: new Set(['N']), copies: [copy('N', 12, 1)], waitedMs: 500 }), { kind: 'wait', missing: ['L', 'P'] })
  })

  it('a primary whose copy is damaged does not cover its epoch: an older copy elsewhere is not started from in silence, and there is nothing to wait for', () => {
    // clones: 0 — epoch 1 ran on B (its copy is still there), epoch 2 on A, whose file is damaged
    const damaged: Copy = { node: 'A', version: -1, epoch: 0, running: false, damaged: true }
    const input = { holders: [primary('B', 1), primary('A', 2)], answered: new Set(['A', 'B']), copies: [damaged, copy('B', 9, 1)], waitedMs: 0 }
    assert.deepEqual(plan(input), { kind: 'lost', missing: [], older: copy('B', 9, 1) })
    assert.deepEqual(plan({ ...input, acceptLoss: true }), { kind: 'copy', copy: copy('B', 9, 1), missing: [] })
    // a clone of epoch 2 holding its copy covers it, as before
    assert.deepEqual(plan({ ...input, holders: [...input.holders, clone('C', 2)], answered: new Set(['A', 'B', 'C']), copies: [damaged, copy('B', 9, 1), copy('C', 12, 2)] }), { kind: 'copy', copy: copy('C', 12, 2), missing: [] })
  })

  it('a missing primary whose clones all answered is covered: no wait (failover after the leader died)', () => {
    const holders = [primary('P'), clone('C')]
    assert.deepEqual(plan({ target: 'C', holders, answered: new Set(['C']), copies: [copy('C', 7)] }), { kind: 'promote', copy: copy('C', 7), missing: ['P'] })
  })

  it('a missing clone of an epoch whose primary is also missing may hold the newest copy: wait, then lost — never an older copy on its own (sim:mesh seeds 22480 and 8091)', () => {
    const holders = [primary('P'), clone('C1'), clone('C2')]
    const input = { target: 'C1', holders, answered: new Set(['C1']), copies: [copy('C1', 4)] }
    assert.deepEqual(plan({ ...input, waitedMs: 1000 }), { kind: 'wait', missing: ['C2', 'P'] })
    // past the bound: not served, the copy found named for the owner to accept
    assert.deepEqual(plan({ ...input, waitedMs: 20_000 }), { kind: 'lost', missing: ['C2', 'P'], older: copy('C1', 4) })
    // the owner accepts the loss: the newest copy found, at once
    assert.deepEqual(plan({ ...input, waitedMs: 1000, acceptLoss: true }), { kind: 'promote', copy: copy('C1', 4), missing: ['C2', 'P'] })
    assert.deepEqual(plan({ ...input, target: 'D', waitedMs: 20_000, acceptLoss: true }), { kind: 'copy', copy: copy('C1', 4), missing: ['C2', 'P'] })
    // a holder back with the newer copy: it wins, no owner needed
    assert.deepEqual(plan({ ...input, answered: new Set(['C1', 'C2']), copies: [copy('C1', 4), copy('C2', 6)], waitedMs: 20_000 }), { kind: 'copy', copy: copy('C2', 6), missing: ['P'] })
  })

  it('a deposed primary running on the target is not adopted past the bound either, unless the owner accepts the loss', () => {
    const holders = [primary('A', 1), clone('B', 1), primary('B', 2), clone('C', 2), primary('A', 3)]
    const input = { holders, answered: new Set(['A']), copies: [copy('A', 19, 1, true)], waitedMs: 60_000 }
    assert.deepEqual(plan(input), { kind: 'lost', missing: ['B', 'C'], older: copy('A', 19, 1, true) })
    assert.deepEqual(plan({ ...input, acceptLoss: true }), { kind: 'running' })
  })

  it('older epochs are superseded by a copy of a newer one', () => {
    // P held epoch 1 and is gone; epoch 2's primary B answered with its copy
    const holders = [primary('P', 1), clone('B', 1), primary('B', 2), clone('C', 2)]
    assert.deepEqual(plan({ target: 'C', holders, answered: new Set(['B', 'C']), copies: [copy('B', 20, 2), copy('C', 19, 2)] }), { kind: 'copy', copy: copy('B', 20, 2), missing: ['P'] })
  })

  it('a wait starts anew for another epoch or target, or after a gap in the rounds; else it keeps its start', () => {
    const m1 = nextWaitMark(undefined, '1 A', 1000)
    assert.deepEqual(m1, { episode: '1 A', since: 1000, seen: 1000 })
    assert.deepEqual(nextWaitMark(m1, '1 A', 1250), { episode: '1 A', since: 1000, seen: 1250 })
    assert.deepEqual(nextWaitMark(m1, '3 A', 1250), { episode: '3 A', since: 1250, seen: 1250 })
    assert.deepEqual(nextWaitMark(m1, '1 B', 1250), { episode: '1 B', since: 1250, seen: 1250 })
    assert.deepEqual(nextWaitMark(m1, '1 A', 1000 + WAIT_GAP_MS + 1), { episode: '1 A', since: 1000 + WAIT_GAP_MS + 1, seen: 1000 + WAIT_GAP_MS + 1 })
  })

  it('newestCopy: epoch, then version, then a running primary, then the target\'s own copy', () => {
    assert.equal(newestCopy([]), undefined)
    assert.deepEqual(newestCopy([copy('A', 5, 1), copy('B', 5, 1, true), copy('C', 4, 1)]), copy('B', 5, 1, true))
    assert.deepEqual(newestCopy([copy('A', 99, 1), copy('B', 1, 3)]), copy('B', 1, 3))
    // a copy kept on a node the instance moved off, equal to the target's: promoted where it is
    assert.deepEqual(newestCopy([copy('K', 7, 2), copy('T', 7, 2)], 'T'), copy('T', 7, 2))
    assert.deepEqual(newestCopy([copy('T', 7, 2), copy('K', 7, 2, true)], 'T'), copy('K', 7, 2, true))
    assert.deepEqual(planRecovery({ target: 'T', holders: [primary('K', 2), clone('T', 2)], answered: new Set(['K', 'T']), copies: [copy('K', 7, 2), copy('T', 7, 2)], waitedMs: 0, waitBoundMs: 10_000 }).kind, 'promote')
  })
})
