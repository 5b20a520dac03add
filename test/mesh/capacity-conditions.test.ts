// Failed instances travel in capacity adverts (CapacityAdvert.conditions): round trip, and
// malformed, duplicated or oversized conditions from the wire refused with one line.
import assert from 'node:assert/strict'
import { decodeAdvert, encodeAdvert, MAX_CONDITIONS, type CapacityAdvert } from '../../src/mesh/capacity.js'
import { CapacityAdvert as AdvertMessage } from '../../src/wire/proto/capacity.js'

const base: CapacityAdvert = {
  peer: 'p', addrs: [], contributed: { cpu: 1, memory: 1024, cells: 1 }, free: { cpu: 1, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000
}
const raw = (conditions: Array<{ address: string, state: string, reason: string, since: number }>): Uint8Array => AdvertMessage.encode({
  peer: 'p', addrs: [], contributed: { cpu: 1000, memory: 1024, cells: 1 }, free: { cpu: 1000, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000, load: [], conditions
})

describe('capacity advert conditions (failed instances)', () => {
  it('round-trips failed instances with reason and time; an advert without any has none', () => {
    const conditions = { 'shop/a#0': { state: 'failed' as const, reason: 'crashed 5 times within 60 s; last: exceeded its CPU time limit of 50 ms', since: 1_700_000_000_000 } }
    assert.deepEqual(decodeAdvert(encodeAdvert({ ...base, conditions })).conditions, conditions)
    assert.deepEqual(decodeAdvert(encodeAdvert(base)).conditions, {})
    // long reasons are cut on encoding; at most MAX_CONDITIONS travel
    const many = Object.fromEntries(Array.from({ length: MAX_CONDITIONS + 5 }, (_, i) => [`shop/a#${i}`, { state: 'failed' as const, reason: 'x'.repeat(900), since: 1 }]))
    const decoded = decodeAdvert(encodeAdvert({ ...base, conditions: many })).conditions ?? {}
    assert.equal(Object.keys(decoded).length, MAX_CONDITIONS)
    assert.equal(decoded['shop/a#0'].reason.length, 500)
  })

  it('refuses unknown states, duplicates, empty or long addresses and long reasons from the wire', () => {
    const ok = { address: 'shop/a#0', state: 'failed', reason: 'r', since: 1 }
    assert.throws(() => decodeAdvert(raw([{ ...ok, state: 'running' }])), /^Error: advert has a condition "running" \(only failed\)$/)
    assert.throws(() => decodeAdvert(raw([ok, ok])), /advert has a condition of "shop\/a#0" twice/)
    assert.throws(() => decodeAdvert(raw([{ ...ok, address: '' }])), /condition address of 0 characters/)
    assert.throws(() => decodeAdvert(raw([{ ...ok, reason: 'x'.repeat(501) }])), /condition reason of 501 characters/)
    assert.throws(() => decodeAdvert(raw(Array.from({ length: MAX_CONDITIONS + 1 }, (_, i) => ({ ...ok, address: `a/b#${i}` })))), /./)
    assert.deepEqual(decodeAdvert(raw([{ ...ok, address: '__proto__' }])).conditions?.['__proto__'], { state: 'failed', reason: 'r', since: 1 })
  })
})
