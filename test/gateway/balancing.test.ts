// Replica choice and admission bounds (pure logic).
import assert from 'node:assert/strict'
import { ReplicaBalancer } from '../../src/gateway/balancer.js'
import { InFlightLimits } from '../../src/gateway/in-flight-limits.js'

describe('gateway/balancer', () => {
  it('goes round-robin over idle replicas', () => {
    const b = new ReplicaBalancer()
    assert.deepEqual(Array.from({ length: 6 }, () => b.pick('a', 'c', 3)), [0, 1, 2, 0, 1, 2])
    assert.equal(b.pick('a', 'c', 1), 0)
  })

  it('prefers the replica with the fewest requests in flight', () => {
    const b = new ReplicaBalancer()
    const end0 = b.begin('a', 'c', 0)
    const end1 = b.begin('a', 'c', 1)
    b.begin('a', 'c', 1)
    assert.equal(b.pick('a', 'c', 3), 2)
    const end2 = b.begin('a', 'c', 2)
    b.begin('a', 'c', 2)
    assert.equal(b.pick('a', 'c', 3), 0)
    end0()
    end0() // ending twice counts once
    assert.equal(b.inFlight('a', 'c', 0), 0)
    end1()
    end2()
    assert.equal(b.inFlight('a', 'c', 1), 1)
  })

  it('avoids a replica that just failed when another exists', () => {
    const b = new ReplicaBalancer()
    for (let i = 0; i < 5; i++) assert.notEqual(b.pick('a', 'c', 2, 1), 1)
    assert.equal(b.pick('a', 'c', 1, 0), 0, 'the only replica is used anyway')
  })

  it('follows a change in the number of replicas and forgets removed apps', () => {
    const b = new ReplicaBalancer()
    b.begin('a', 'c', 0)
    assert.equal(b.pick('a', 'c', 2), 1)
    assert.equal(b.pick('a', 'c', 4) >= 1, true)
    b.forgetApp('a')
    assert.equal(b.inFlight('a', 'c', 0), 0)
  })
})

describe('gateway/in-flight-limits', () => {
  it('admits up to the per-key bound and the total bound, and frees on release', () => {
    const limits = new InFlightLimits(3, 2)
    const a1 = limits.tryEnter('a')
    const a2 = limits.tryEnter('a')
    assert.ok(a1 != null && a2 != null)
    assert.equal(limits.tryEnter('a'), undefined, 'per-key bound')
    const b1 = limits.tryEnter('b')
    assert.ok(b1 != null)
    assert.equal(limits.tryEnter('c'), undefined, 'total bound')
    assert.equal(limits.inFlight, 3)
    a1()
    a1()
    assert.equal(limits.inFlight, 2, 'a release counts once')
    assert.ok(limits.tryEnter('a') != null)
  })

  it('refuses nonsensical bounds', () => {
    assert.throws(() => new InFlightLimits(0, 1), /at least 1/)
    assert.throws(() => new InFlightLimits(1, Number.NaN), /at least 1/)
  })
})
