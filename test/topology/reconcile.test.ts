import assert from 'node:assert/strict'
import { planReconcile } from '../../src/topology/reconcile.js'
import type { ReconcileStep, RunningCopy } from '../../src/topology/reconcile.js'
import type { Placement } from '../../src/topology/placement-accounting.js'

const v1 = 'rev1'
const v2 = 'rev2'
const copy = (cell: string, index: number, role: 'primary' | 'clone', node: string, revision = v1): RunningCopy => ({ cell, index, role, node, revision })
const brief = (steps: ReconcileStep[]): string[] => steps.map(s => {
  switch (s.kind) {
    case 'promote': return `${s.wave} promote ${s.address} ${s.node}`
    case 'handover': return `${s.wave} handover ${s.address} ${s.from}->${s.node}${s.keepAsClone ? ' keep' : ''}`
    case 'stop': return `${s.wave} stop ${s.address} ${s.role} ${s.node}`
    default: return `${s.wave} ${s.kind} ${s.address} ${s.role} ${s.node} ${s.revision}`
  }
})

describe('topology/reconcile', () => {
  const placement: Placement = { c: [{ primary: 'a', clones: ['b'] }, { primary: 'b', clones: ['c'] }] }

  it('starts everything of a new app in one wave', () => {
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement, revisions: { c: v1 } }, [])), [
      '1 start shop/c#0 primary a rev1',
      '1 start shop/c#0 clone b rev1',
      '1 start shop/c#1 primary b rev1',
      '1 start shop/c#1 clone c rev1'
    ])
  })

  it('plans nothing when the actual state matches (idempotent)', () => {
    const actual = [copy('c', 0, 'primary', 'a'), copy('c', 0, 'clone', 'b'), copy('c', 1, 'primary', 'b'), copy('c', 1, 'clone', 'c')]
    assert.deepEqual(planReconcile({ app: 'shop', placement, revisions: { c: v1 } }, actual), [])
  })

  it('promotes first on failover, then starts the replacement clone', () => {
    const after: Placement = { c: [{ primary: 'b', clones: ['c'] }] }
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: after, revisions: { c: v1 } }, [copy('c', 0, 'clone', 'b')])), [
      '0 promote shop/c#0 b',
      '1 start shop/c#0 clone c rev1'
    ])
  })

  it('moves a primary by warming a copy, handing over, then stopping nothing else', () => {
    const after: Placement = { c: [{ primary: 'c', clones: ['b'] }] }
    const actual = [copy('c', 0, 'primary', 'a'), copy('c', 0, 'clone', 'b')]
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: after, revisions: { c: v1 } }, actual)), [
      '1 start shop/c#0 clone c rev1',
      '2 handover shop/c#0 a->c'
    ])
    const swap: Placement = { c: [{ primary: 'b', clones: ['a'] }] }
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: swap, revisions: { c: v1 } }, actual)), [
      '2 handover shop/c#0 a->b keep'
    ])
  })

  it('rolls a code update out one instance at a time, clones before primaries', () => {
    const actual = [copy('c', 0, 'primary', 'a'), copy('c', 0, 'clone', 'b'), copy('c', 1, 'primary', 'b'), copy('c', 1, 'clone', 'c'),
      copy('d', 0, 'primary', 'c')]
    const withD: Placement = { ...placement, d: [{ primary: 'c', clones: [] }] }
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: withD, revisions: { c: v2, d: v2 } }, actual)), [
      '3 update shop/c#0 clone b rev2',
      '4 update shop/c#0 primary a rev2',
      '4 update shop/d#0 primary c rev2',
      '5 update shop/c#1 clone c rev2',
      '6 update shop/c#1 primary b rev2'
    ])
  })

  it('stops what is no longer wanted last, including removed cells and stray primaries', () => {
    const actual = [copy('c', 0, 'primary', 'a'), copy('c', 0, 'clone', 'b'), copy('c', 0, 'clone', 'd'), copy('c', 1, 'primary', 'b'), copy('c', 1, 'clone', 'c'),
      copy('c', 2, 'primary', 'c'), copy('old', 0, 'primary', 'a'), copy('c', 1, 'primary', 'd')]
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement, revisions: { c: v1 } }, actual)), [
      '3 stop shop/c#0 clone d',
      '3 stop shop/c#1 primary d',
      '3 stop shop/c#2 primary c',
      '3 stop shop/old#0 primary a'
    ])
  })

  it('turns a copy in the wrong role into a clone and stops copies of a pending instance', () => {
    const actual = [copy('c', 0, 'primary', 'a'), copy('c', 0, 'primary', 'b')]
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: { c: [{ primary: 'a', clones: ['b'] }] }, revisions: { c: v1 } }, actual)), [
      '3 update shop/c#0 clone b rev1'
    ])
    assert.deepEqual(brief(planReconcile({ app: 'shop', placement: { c: [{ primary: null, clones: [] }] }, revisions: { c: v1 } }, actual)), [
      '3 stop shop/c#0 primary a',
      '3 stop shop/c#0 primary b'
    ])
    assert.throws(() => planReconcile({ app: 'shop', placement, revisions: {} }, []), /no revision for cell c/)
  })
})
