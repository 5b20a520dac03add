import assert from 'node:assert/strict'
import { bundleSources, memberChangeDue, nextMemberChange, noteMissing, pickGroupMembers } from '../../src/topology/group-members.js'
import type { NodeCapacity } from '../../src/topology/types.js'

const GiB = 2 ** 30
function node (id: string, memoryGiB: number, zone?: string, alive = true): NodeCapacity {
  return { id, contributed: { cpu: 2, memory: memoryGiB * GiB, cells: 10 }, alive, ...(zone !== undefined ? { zone } : {}) }
}

describe('topology/group-members', () => {
  it('fetches a bundle from the live members first, a member judged down last, never from itself', () => {
    assert.deepEqual(bundleSources(['a', 'b', 'self', 'c'], 'self', new Set(['b', 'c', 'self'])), ['b', 'c', 'a'])
    assert.deepEqual(bundleSources(['self'], 'self', new Set(['self'])), [])
    assert.deepEqual(bundleSources(['a', 'b'], 'self', new Set()), ['a', 'b'], 'none live: all of them, in order')
  })

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

  describe('nextMemberChange', () => {
    const nodes = [node('a', 1), node('b', 1), node('c', 1, undefined, false), node('d', 16), node('e', 2)]
    const base = { members: ['a', 'b', 'c'], self: 'a', nodes, verdictAfterMs: 10_000 }

    it('adds nothing beside a suspected member: a group of 4 with one down would need 3 for its quorum', () => {
      assert.equal(nextMemberChange({ ...base, missingSince: new Map([['c', 1000]]), now: 1500 }), undefined)
      assert.equal(nextMemberChange({ ...base, missingSince: new Map([['c', 1000]]), now: 10_999 }), undefined)
    })

    it('removes a member missing for the verdict time, then fills the free seat with the best live node', () => {
      assert.deepEqual(nextMemberChange({ ...base, missingSince: new Map([['c', 1000]]), now: 11_000 }), { remove: 'c' })
      assert.deepEqual(nextMemberChange({ ...base, members: ['a', 'b'], missingSince: new Map(), now: 11_000 }), { add: 'd' })
    })

    it('never removes the leader itself, and leaves a full healthy group alone', () => {
      assert.equal(nextMemberChange({ ...base, missingSince: new Map([['a', 0]]), now: 60_000 }), undefined)
      assert.equal(nextMemberChange({ ...base, members: ['a', 'b', 'd'], missingSince: new Map(), now: 60_000 }), undefined)
    })

    it('judges no member missing while the leader\'s view is filling, but fills a free seat at once', () => {
      const missingSince = new Map([['c', 0], ['b', 0]])
      assert.equal(nextMemberChange({ ...base, missingSince, now: 60_000, judgeMissing: false }), undefined)
      // a leader restarted into a group of two: the free seat is filled without waiting
      assert.deepEqual(nextMemberChange({ ...base, members: ['a', 'b'], missingSince, now: 0, judgeMissing: false }), { add: 'd' })
      assert.deepEqual(nextMemberChange({ ...base, members: ['a', 'b'], missingSince, now: 60_000 }), { remove: 'b' })
    })

    it('removes a member that is leaving the mesh at once, while it still votes, even while the leader\'s view is filling; never the leader itself', () => {
      const left = (peer: string): boolean => peer === 'b' || peer === 'a'
      assert.deepEqual(nextMemberChange({ ...base, missingSince: new Map(), now: 0, left }), { remove: 'b' })
      assert.deepEqual(nextMemberChange({ ...base, missingSince: new Map(), now: 0, judgeMissing: false, left }), { remove: 'b' })
      assert.equal(nextMemberChange({ ...base, members: ['a', 'b', 'd'], missingSince: new Map(), now: 0, left: peer => peer === 'a' }), undefined)
    })

    it('grows a small group when a node joins a small mesh', () => {
      assert.deepEqual(nextMemberChange({ ...base, members: ['a'], nodes: [node('a', 1), node('b', 1)], missingSince: new Map(), now: 0 }), { add: 'b' })
    })
  })

  describe('memberChangeDue', () => {
    it('lets the add follow a removal as soon as the removal is applied, not a retry period later', () => {
      const removal = { node: 'c', add: false, at: 1000 }
      assert.equal(memberChangeDue(removal, ['a', 'b', 'c'], 1100, 2000), false, 'the removal is not applied yet')
      assert.equal(memberChangeDue(removal, ['a', 'b'], 1100, 2000), true, 'applied: the add may go at once')
      assert.equal(memberChangeDue(removal, ['a', 'b', 'c'], 3000, 2000), true, 'not applied after the retry period: proposed again')
    })

    it('waits for an add to apply the same way, and lets a leader with no change of its own go', () => {
      const add = { node: 'd', add: true, at: 1000 }
      assert.equal(memberChangeDue(add, ['a', 'b'], 2999, 2000), false)
      assert.equal(memberChangeDue(add, ['a', 'b', 'd'], 1001, 2000), true)
      assert.equal(memberChangeDue(undefined, ['a', 'b'], 0, 2000), true)
    })
  })
  it('a member is missing while it is neither live nor answering on an open connection; answering or live again clears it', () => {
    const missing = new Map<string, number>()
    const members = new Set(['a', 'b', 'c'])
    let answering = new Set<string>()
    const note = (live: string[], now: number): void => { noteMissing(missing, members, new Set(live), peer => answering.has(peer), now) }
    note(['a', 'b', 'c'], 0)
    assert.deepEqual([...missing], [])
    // c's adverts stop but it still answers pings: not missing (gossip failed, not c)
    answering = new Set(['c'])
    note(['a', 'b'], 100)
    assert.deepEqual([...missing], [])
    // then it stops answering too: missing from then on, and the time is kept
    answering = new Set()
    note(['a', 'b'], 200)
    note(['a', 'b'], 300)
    assert.deepEqual([...missing], [['c', 200]])
    // answering again clears it
    answering = new Set(['c'])
    note(['a', 'b'], 400)
    assert.deepEqual([...missing], [])
    // a node that is no longer a member is forgotten
    answering = new Set()
    note(['a', 'b'], 500)
    members.delete('c')
    note(['a', 'b'], 600)
    assert.deepEqual([...missing], [])
  })
})
