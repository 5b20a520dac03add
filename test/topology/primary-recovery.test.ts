// primary-recovery.ts: the leader's wait (`recovering`) for the holders of an instance's
// newest copy. Pure decision code under a stand-in inventory (the clone protocol is tested
// with real processes elsewhere).
import assert from 'node:assert/strict'
import { PrimaryRecovery } from '../../src/topology/primary-recovery.js'
import type { AppState } from '../../src/topology/app-state.js'
import type { HostedApp } from '../../src/topology/app-groups.js'
import { leaseWaitUntil, promotionIsDirect, type FencedAnswer, type Holder, type RecoveryPlan } from '../../src/topology/recovery.js'
import { createLogger, setLogSink } from '../../src/util/logger.js'
import { waitFor } from '../support/wait.js'

const ADDRESS = 'ledger/book#0'

function stateAt (epoch: number, holders: Holder[]): AppState {
  return { app: 'ledger', epochs: { [ADDRESS]: epoch }, holders: { [ADDRESS]: holders } } as unknown as AppState
}

type RecoveryParts = Pick<ConstructorParameters<typeof PrimaryRecovery>[0], 'alive' | 'startPrimary'> & { clones: Record<string, unknown> }

/** a recovery led by node L, whose lease always holds, over stand-in clones */
function recoveryWith (parts: RecoveryParts, init: ConstructorParameters<typeof PrimaryRecovery>[1]): PrimaryRecovery {
  return new PrimaryRecovery({
    self: 'L',
    logger: createLogger('test'),
    checkLease: async () => {},
    ...parts,
    clones: parts.clones as unknown as ConstructorParameters<typeof PrimaryRecovery>[0]['clones']
  }, init)
}

describe('primary recovery: the leader\'s wait for an instance\'s copies', () => {
  let restore: () => void
  beforeEach(() => { restore = setLogSink(() => {}) })
  afterEach(() => { restore() })

  it('a wait for a later epoch starts anew: a wait begun for an earlier epoch does not cut it short', async () => {
    const started: string[] = []
    // node A answers with the running primary of epoch 1 it still holds; B and C (epoch 3's holders) do not answer
    const recovery = recoveryWith({
      alive: () => false,
      clones: {
        inventoryOf: async (node: string) => {
          if (node !== 'A') throw new Error(`${node} does not answer`)
          return [{ address: ADDRESS, version: 5, epoch: 1, running: true }]
        },
        fetchCopy: async () => { throw new Error('no fetch expected') },
        promote: async () => { throw new Error('no promotion expected') }
      },
      startPrimary: async (address: string, node: string) => { started.push(`${address} on ${node}`) }
    }, { waitBoundMs: 200, inventoryTimeoutMs: 50 })
    const h = { group: 'g', app: 'ledger' } as unknown as HostedApp
    const code = { bundle: 'b', owner: new Uint8Array(32), limits: {} } as unknown as Parameters<PrimaryRecovery['start']>[4]
    // epoch 2 ran on B with clone C after A, epoch 1's primary, was cut off
    const epoch2: Holder[] = [{ node: 'A', epoch: 1, role: 'primary' }, { node: 'B', epoch: 2, role: 'primary' }, { node: 'C', epoch: 2, role: 'clone' }]
    assert.equal(await recovery.start(h, stateAt(2, epoch2), ADDRESS, 'A', code), 'recovering')
    const t0 = Date.now()
    await waitFor(async () => Date.now() - t0 > 300, { timeout: 5000, what: 'the first wait\'s bound to pass' })
    // later (another leader came and went), epoch 3 places A again: B and C may hold newer adds
    const epoch3: Holder[] = [...epoch2, { node: 'B', epoch: 3, role: 'clone' }, { node: 'C', epoch: 3, role: 'clone' }]
    assert.equal(await recovery.start(h, stateAt(3, epoch3), ADDRESS, 'A', code), 'recovering', 'epoch 3 waits for B and C from its own start')
    assert.deepEqual(started, [])
  })
  it('clones: 2 — the clone placed as the new primary lags the one that confirmed the last reply: its promotion asks the inventories and starts from the newer copy', async () => {
    // epoch 1: P primary, C1 and C2 clones; P died; epoch 2 places C1 as primary (with a fresh clone N)
    const holders: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C1', epoch: 1, role: 'clone' }, { node: 'C2', epoch: 1, role: 'clone' }, { node: 'C1', epoch: 2, role: 'primary' }, { node: 'C2', epoch: 2, role: 'clone' }, { node: 'N', epoch: 2, role: 'clone' }]
    assert.equal(promotionIsDirect(holders, 2, 'C1', { version: 6, epoch: 1 }), false)
    // one clone: the only clone confirmed every reply, its own copy is the newest
    const one: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C1', epoch: 1, role: 'clone' }, { node: 'C1', epoch: 2, role: 'primary' }, { node: 'N', epoch: 2, role: 'clone' }]
    assert.equal(promotionIsDirect(one, 2, 'C1', { version: 6, epoch: 1 }), true)
    assert.equal(promotionIsDirect([], 0, 'C1', undefined), true, 'the first placement: nothing was acknowledged before')

    const started: string[] = []
    const promoted: string[] = []
    const recovery = recoveryWith({
      alive: node => node !== 'P',
      clones: {
        inventoryOf: async (node: string) => {
          if (node === 'P') throw new Error('P is dead')
          if (node === 'C1') return [{ address: ADDRESS, version: 6, epoch: 1, running: false }]
          if (node === 'C2') return [{ address: ADDRESS, version: 7, epoch: 1, running: false }]
          return []
        },
        fetchCopy: async (node: string) => ({ state: `state of ${node}`, version: 7, epoch: 1 }),
        promote: async (node: string) => { promoted.push(node) }
      },
      startPrimary: async (address: string, node: string, _code: unknown, from?: { state: string, version: number }) => { started.push(`${address} on ${node} from ${from?.state ?? 'blank'} v${from?.version ?? 0}`) }
    }, { waitBoundMs: 200, inventoryTimeoutMs: 50 })
    const h = { group: 'g', app: 'ledger' } as unknown as HostedApp
    const outcome = await recovery.start(h, stateAt(2, holders), ADDRESS, 'C1', { bundle: 'b', owner: new Uint8Array(), limits: { memory: 1, timeout: 1, mailbox: 1 }, epoch: 2 })
    assert.equal(outcome, 'started')
    assert.deepEqual(promoted, [])
    assert.deepEqual(started, [`${ADDRESS} on C1 from state of C2 v7`])
  })

  it('past its bound an instance whose newest copy may be on a missing node is lost, not started from an older copy; the owner\'s acceptance of the loss starts it, for that episode only', async () => {
    // epoch 1: P primary with clones C1 and C2 (a reply waited for either); only C1 answers
    const holders: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C1', epoch: 1, role: 'clone', paired: true }, { node: 'C2', epoch: 1, role: 'clone', paired: true }]
    const promoted: string[] = []
    const lines: string[] = []
    restore()
    restore = setLogSink(line => { lines.push(line) })
    const parts: RecoveryParts = {
      alive: node => node === 'C1',
      clones: {
        inventoryOf: async (node: string) => {
          if (node !== 'C1') throw new Error(`${node} does not answer`)
          return [{ address: ADDRESS, version: 4, epoch: 1, running: false }]
        },
        fetchCopy: async () => { throw new Error('no fetch expected') },
        promote: async (node: string) => { promoted.push(node) }
      },
      startPrimary: async () => { throw new Error('no start expected') }
    }
    const init = { waitBoundMs: 100, inventoryTimeoutMs: 50, leaseMs: 1 }
    const recovery = recoveryWith(parts, init)
    const h = { group: 'g', app: 'ledger' } as unknown as HostedApp
    const code = (epoch: number): Parameters<PrimaryRecovery['start']>[4] => ({ bundle: 'b', owner: new Uint8Array(), limits: { memory: 1, timeout: 1, mailbox: 1 }, epoch })
    assert.equal(await recovery.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'recovering')
    assert.equal(recovery.acceptLoss('g', ADDRESS), false, 'an instance still recovering is not lost yet')
    const t0 = Date.now()
    await waitFor(async () => Date.now() - t0 > 150, { timeout: 5000, what: 'the bound to pass' })
    assert.equal(await recovery.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'lost')
    assert.equal(await recovery.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'lost', 'it stays lost while C2 and P are away')
    assert.deepEqual(promoted, [])
    assert.ok(lines.some(l => l.includes('ledger/book#0 is lost: a newer copy than the one on C1 may exist (C2, P did not answer); it is not served until a copy comes back, or until `stem restart ledger/book --accept-loss` starts it from the copy on C1 (state version 4, epoch 1), giving up any newer state')), lines.join('\n'))
    assert.equal(recovery.acceptLoss('other', ADDRESS), false, 'another group\'s instance')
    assert.equal(recovery.acceptLoss('g', ADDRESS), true)
    // the placement moved on meanwhile (epoch 2): its holders are waited for again
    assert.equal(await recovery.start(h, stateAt(2, [...holders, { node: 'C1', epoch: 2, role: 'primary' }]), ADDRESS, 'C1', code(2)), 'recovering')
    assert.deepEqual(promoted, [])
    // the accepted episode: C1's own copy, at once
    const again = recoveryWith(parts, init)
    assert.equal(await again.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'recovering')
    const t1 = Date.now()
    await waitFor(async () => Date.now() - t1 > 150, { timeout: 5000, what: 'the bound to pass' })
    assert.equal(await again.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'lost')
    assert.equal(again.acceptLoss('g', ADDRESS), true)
    assert.equal(await again.start(h, stateAt(1, holders), ADDRESS, 'C1', code(1)), 'started')
    assert.deepEqual(promoted, ['C1'])
    assert.ok(lines.some(l => l.includes('ledger/book#0 started on C1 (promote), its owner having accepted the loss')), lines.join('\n'))
    assert.equal(again.acceptLoss('g', ADDRESS), false, 'started: nothing left to accept')
  })

  it('a node judged down ends the ask for its inventory at once: a stalled node the capacity view still counts alive holds up no failover for the inventory timeout', async () => {
    // P ran the primary and stalled (its asks hang: nothing answers); C, its clone, holds version 4
    const asked: string[] = []
    const recovery = recoveryWith({
      alive: () => true,
      clones: {
        inventoryOf: async (node: string, _app: string, signal: AbortSignal) => {
          asked.push(node)
          if (node === 'C') return [{ address: ADDRESS, version: 4, epoch: 1, running: false }]
          return await new Promise((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true }) })
        },
        fetchCopy: async (node: string) => ({ state: `state of ${node}`, version: 4, epoch: 1 }),
        promote: async () => { throw new Error('no promotion expected') }
      },
      // as messaging refuses a start on a node judged down (the next round places the primary elsewhere)
      startPrimary: async (_address: string, node: string) => { throw new Error(`${node} is down`) }
    // the timeout is far past the test's deadline: only the verdict can end the ask in time
    }, { waitBoundMs: 60_000, inventoryTimeoutMs: 600_000 })
    const h = { group: 'g', app: 'ledger' } as unknown as HostedApp
    const holders: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C', epoch: 1, role: 'clone' }]
    let outcome: string | undefined
    const starting = recovery.start(h, stateAt(1, holders), ADDRESS, 'P', { bundle: 'b', owner: new Uint8Array(), limits: { memory: 1, timeout: 1, mailbox: 1 }, epoch: 1 }).then(o => { outcome = o }, (err: Error) => { outcome = err.message })
    await waitFor(() => asked.includes('P') && asked.includes('C'), { timeout: 5000, what: 'both inventories asked' })
    // another node's verdict ends nothing
    recovery.peerDown('X')
    recovery.peerDown('P')
    await waitFor(() => outcome !== undefined, { timeout: 10_000, what: 'the recovery to go on once P is judged down' })
    await starting
    // the only clone confirmed every reply: its copy goes to the target, which is down
    assert.equal(outcome, 'P is down')
  })

  it('leaseWaitUntil: a promotion waits for a deposed primary\'s lease only as long as another clone of an earlier epoch may have granted it one', () => {
    const promote: RecoveryPlan = { kind: 'promote', copy: { node: 'C1', version: 6, epoch: 1, running: false }, missing: ['P'] }
    const copy: RecoveryPlan = { kind: 'copy', copy: { node: 'C2', version: 7, epoch: 1, running: false }, missing: ['P'] }
    const LEASE = 1000
    const FENCED = 10_000
    // epoch 1: P primary, C1 and C2 clones; epoch 2 places C1 as primary with a new clone N
    const holders: Holder[] = [{ node: 'P', epoch: 1, role: 'primary' }, { node: 'C1', epoch: 1, role: 'clone' }, { node: 'C2', epoch: 1, role: 'clone' }, { node: 'C1', epoch: 2, role: 'primary' }, { node: 'N', epoch: 2, role: 'clone' }]
    const answered = (quietMs?: number): Map<string, FencedAnswer> => new Map([['C1', { at: 9_990 }], ['N', { at: 9_995, quietMs: 0 }], ['C2', { at: 9_900, quietMs }]])
    // C2 took a state 300 ms before its answer arrived: P may answer on it until 9,600 + 1,000
    assert.equal(leaseWaitUntil(promote, holders, 'C1', 2, answered(300), new Set(['P']), FENCED, LEASE), 10_600)
    // a wait until a moment before the inventories ended is none
    assert.ok(leaseWaitUntil(promote, holders, 'C1', 2, answered(5000), new Set(['P']), FENCED, LEASE) <= FENCED, 'idle longer than a lease: no wait')
    assert.ok(leaseWaitUntil(promote, holders, 'C1', 2, answered(Infinity), new Set(['P']), FENCED, LEASE) <= FENCED, 'no copy there: it never confirmed')
    assert.equal(leaseWaitUntil(promote, holders, 'C1', 2, answered(undefined), new Set(['P']), FENCED, LEASE), 10_900, 'not reported (an older Stem): a lease from its answer')
    // N was placed in epoch 2: it follows C1 only, however recently it took a state
    assert.ok(leaseWaitUntil(promote, holders.filter(h => h.node !== 'C2'), 'C1', 2, answered(0), new Set(['P']), FENCED, LEASE) <= FENCED)
    // C2 did not answer: it may have taken the fence and lost the answer, unless no ask reached it
    const noC2 = new Map([...answered(0)].filter(([n]) => n !== 'C2'))
    assert.equal(leaseWaitUntil(promote, holders, 'C1', 2, noC2, new Set(['P']), FENCED, LEASE), FENCED + LEASE)
    assert.ok(leaseWaitUntil(promote, holders, 'C1', 2, noC2, new Set(['P', 'C2']), FENCED, LEASE) <= FENCED)
    // the dead primary's own clone of an epoch before: no ask reached it
    const chain: Holder[] = [{ node: 'P', epoch: 1, role: 'clone' }, { node: 'P', epoch: 2, role: 'primary' }, { node: 'C1', epoch: 2, role: 'clone' }, { node: 'C1', epoch: 3, role: 'primary' }]
    assert.ok(leaseWaitUntil(promote, chain, 'C1', 3, new Map(), new Set(['P']), FENCED, LEASE) <= FENCED)
    assert.equal(leaseWaitUntil(copy, holders, 'C1', 2, answered(5000), new Set(['P']), FENCED, LEASE), FENCED + LEASE, 'a start from another node\'s copy always waits')
    assert.ok(leaseWaitUntil({ kind: 'blank' }, holders, 'C1', 2, answered(0), new Set(), FENCED, LEASE) <= FENCED)
  })
})
