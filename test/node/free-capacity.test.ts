// Free capacity as a node advertises it: contribution minus what is placed (pure).
import assert from 'node:assert/strict'
import { freeCapacity, placedCells } from '../../src/node/free-capacity.js'
import type { CellInfo } from '../../src/cells/runtime.js'

const MIB = 2 ** 20
const rule = { memoryHeadroom: 2, hostFootprint: 40 * MIB }
const contributed = { cpu: 2, memory: 1024 * MIB, cells: 10 }

function info (address: string, status: CellInfo['status'], memory = 16 * MIB): CellInfo {
  return { address, app: address.slice(0, address.indexOf('/')), status, limits: { memory, timeout: 100, mailbox: 10 }, version: 0, inflight: 0, messages: 0 }
}

describe('node: free capacity', () => {
  it('nothing placed: all of the contribution is free', () => {
    assert.deepEqual(freeCapacity(contributed, [], rule), contributed)
  })

  it('each cell costs its limit × headroom and a slot, each app one host footprint', () => {
    const free = freeCapacity(contributed, [
      { address: 'a/x#0', app: 'a', memory: 16 * MIB },
      { address: 'a/y#0', app: 'a', memory: 32 * MIB },
      { address: 'b/x#0', app: 'b', memory: 16 * MIB }
    ], rule)
    // 1024 − (16 + 32 + 16) × 2 − 2 apps × 40 = 816 MiB
    assert.deepEqual(free, { cpu: 2, memory: 816 * MIB, cells: 7 })
  })

  it('never below zero when the contribution was lowered under what runs', () => {
    const free = freeCapacity({ cpu: 1, memory: 10 * MIB, cells: 1 }, [{ address: 'a/x#0', app: 'a', memory: 16 * MIB }, { address: 'a/x#1', app: 'a', memory: 16 * MIB }], rule)
    assert.deepEqual(free, { cpu: 1, memory: 0, cells: 0 })
  })

  it('placed cells: transformed instances and held clones, each address once; blank, reverted and failed ones do not count', () => {
    const runtime = { cells: () => [info('a/x#0', 'transformed'), info('a/x#1', 'stem'), info('a/y#0', 'reverted'), info('b/x#0', 'transformed', 32 * MIB)] }
    // a/x#0 held as a clone too (a promotion under way): counted once, as it runs
    const clones = { heldCells: () => [{ address: 'a/x#0', app: 'a', memory: 16 * MIB }, { address: 'c/z#0', app: 'c', memory: 8 * MIB }] }
    const placed = placedCells(runtime, clones).sort((p, q) => p.address < q.address ? -1 : 1)
    assert.deepEqual(placed, [
      { address: 'a/x#0', app: 'a', memory: 16 * MIB },
      { address: 'b/x#0', app: 'b', memory: 32 * MIB },
      { address: 'c/z#0', app: 'c', memory: 8 * MIB }
    ])
  })
})
