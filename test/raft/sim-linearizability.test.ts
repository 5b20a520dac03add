// The linearizability checker must accept linearizable histories and reject the rest.
import assert from 'node:assert/strict'
import { checkOperations, kvModel } from '../../src/raft/sim/linearizability.js'
import type { KvOperation } from '../../src/raft/sim/linearizability.js'

const put = (key: string, value: number, call: number, ret: number): KvOperation => ({ input: { kind: 'put', key, value }, output: null, call, return: ret })
const get = (key: string, value: number | null, call: number, ret: number): KvOperation => ({ input: { kind: 'get', key }, output: value, call, return: ret })

describe('sim: linearizability checker (key-value registers)', () => {
  it('accepts a sequential history', () => {
    assert.equal(checkOperations(kvModel, [get('x', null, 1, 2), put('x', 1, 3, 4), get('x', 1, 5, 6), put('x', 2, 7, 8), get('x', 2, 9, 10)]), 'ok')
  })

  it('accepts a read concurrent with a write returning either value', () => {
    for (const seen of [null, 1]) {
      assert.equal(checkOperations(kvModel, [put('x', 1, 1, 4), get('x', seen, 2, 3)]), 'ok')
    }
  })

  it('rejects a stale read after a completed write', () => {
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, 2), get('x', null, 3, 4)]), 'illegal')
  })

  it('rejects a read of a value never written', () => {
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, 2), get('x', 7, 3, 4)]), 'illegal')
  })

  it('rejects reads that go back in time (new value, then the old one)', () => {
    // put 2 overlaps both reads, but the second read starts after the first ended
    const h = [put('x', 1, 1, 2), put('x', 2, 3, 20), get('x', 2, 4, 5), get('x', 1, 6, 7)]
    assert.equal(checkOperations(kvModel, h), 'illegal')
    // the same reads concurrent with each other are fine
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, 2), put('x', 2, 3, 20), get('x', 2, 4, 7), get('x', 1, 5, 6)]), 'ok')
  })

  it('treats a write without a response as possibly applied at any later time, or never', () => {
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, Infinity), get('x', null, 2, 3), get('x', 1, 4, 5)]), 'ok')
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, Infinity), get('x', null, 2, 3)]), 'ok')
    // but not before it was called
    assert.equal(checkOperations(kvModel, [get('x', 1, 1, 2), put('x', 1, 3, Infinity)]), 'illegal')
    // and once seen, it cannot be unseen
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, Infinity), get('x', 1, 2, 3), get('x', null, 4, 5)]), 'illegal')
  })

  it('checks keys independently', () => {
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, 2), put('y', 2, 3, 4), get('x', 1, 5, 6), get('y', 2, 7, 8)]), 'ok')
    assert.equal(checkOperations(kvModel, [put('x', 1, 1, 2), put('y', 2, 3, 4), get('x', 1, 5, 6), get('y', 1, 7, 8)]), 'illegal')
  })

  it('decides large concurrent histories thanks to memoization', () => {
    // 60 overlapping writes and a read of the last value: a naive search explores 60! orders
    const h: KvOperation[] = []
    for (let i = 0; i < 60; i++) h.push(put('x', i, i + 1, 1000))
    h.push(get('x', 59, 1001, 1002))
    assert.equal(checkOperations(kvModel, h), 'ok')
    // refuting needs every (set of writes, value) pair: 2^12 × 12 here, not 12! orders
    const small: KvOperation[] = []
    for (let i = 0; i < 12; i++) small.push(put('x', i, i + 1, 1000))
    small.push(get('x', 11, 1001, 1002), get('x', 5, 1003, 1004))
    assert.equal(checkOperations(kvModel, small), 'illegal')
  })

  it('reports unknown when the search budget is spent', () => {
    const h: KvOperation[] = []
    for (let i = 0; i < 20; i++) h.push(put('x', i, i + 1, 100))
    h.push(get('x', 99, 101, 102))
    assert.equal(checkOperations(kvModel, h, 10), 'unknown')
  })
})
