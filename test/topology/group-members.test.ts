import assert from 'node:assert/strict'
import { pickGroupMembers } from '../../src/topology/group-members.js'
import type { NodeCapacity } from '../../src/topology/types.js'

const GiB = 2 ** 30
function node (id: string, memoryGiB: number, zone?: string, alive = true): NodeCapacity {
  return { id, contributed: { cpu: 2, memory: memoryGiB * GiB, cells: 10 }, alive, ...(zone !== undefined ? { zone } : {}) }
}

describe('topology/group-members', () => {
  it('picks up to three live nodes, the largest contributors first', () => {
    assert.deepEqual(pickGroupMembers([node('a', 1), node('b', 4), node('c', 2), node('d', 8), node('e', 8, undefined, false)]), ['b', 'c', 'd'])
  })

  it('returns fewer on a small mesh, none on an empty one', () => {
    assert.deepEqual(pickGroupMembers([node('a', 1)]), ['a'])
    assert.deepEqual(pickGroupMembers([node('a', 1, undefined, false)]), [])
    assert.deepEqual(pickGroupMembers([]), [])
  })

  it('prefers distinct failure zones over capacity', () => {
    const nodes = [node('a', 8, 'home'), node('b', 8, 'home'), node('c', 8, 'home'), node('d', 1, 'cloud'), node('e', 1, 'vps')]
    assert.deepEqual(pickGroupMembers(nodes), ['a', 'd', 'e'])
  })

  it('keeps live current members and replaces only dead ones', () => {
    const nodes = [node('a', 1), node('b', 1), node('c', 1, undefined, false), node('d', 16)]
    assert.deepEqual(pickGroupMembers(nodes, 3, ['a', 'b', 'c']), ['a', 'b', 'd'])
    assert.deepEqual(pickGroupMembers(nodes, 3, ['a', 'b']), ['a', 'b', 'd'])
  })

  it('is deterministic: ties by peer id, any input order', () => {
    const nodes = [node('z', 2), node('y', 2), node('x', 2), node('w', 2)]
    assert.deepEqual(pickGroupMembers(nodes), ['w', 'x', 'y'])
    assert.deepEqual(pickGroupMembers([...nodes].reverse()), ['w', 'x', 'y'])
    assert.deepEqual(pickGroupMembers(nodes, 5), ['w', 'x', 'y', 'z'])
  })
})
