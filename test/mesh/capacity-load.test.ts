// The `load` of capacity adverts (recent rates, e.g. messages per second of each cell
// instance): round trip, bounded to the busiest entries, malformed entries refused.
import assert from 'node:assert/strict'
import { CapacityAdvert as AdvertMessage } from '../../src/wire/proto/capacity.js'
import { decodeAdvert, encodeAdvert, MAX_LOAD, type CapacityAdvert } from '../../src/mesh/capacity.js'

const advert = (load: Record<string, number>): CapacityAdvert => ({
  peer: 'p', addrs: [], contributed: { cpu: 1, memory: 1024, cells: 1 }, free: { cpu: 1, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000, load
})

const raw = (load: Array<{ key: string, milli: number }>): Uint8Array => AdvertMessage.encode({
  peer: 'p', addrs: [], contributed: { cpu: 1000, memory: 1024, cells: 1 }, free: { cpu: 1000, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000, load
})

describe('capacity advert load', () => {
  it('round-trips rates to a thousandth; drops zero, negative, non-finite and over-long keys on encoding', () => {
    const decoded = decodeAdvert(encodeAdvert(advert({ 'shop/a#0': 2.5, 'shop/b#1': 0.0004, 'shop/c#0': 0, 'shop/d#0': -1, 'shop/e#0': Number.NaN, ['x'.repeat(201)]: 3 })))
    assert.deepEqual(decoded.load, { 'shop/a#0': 2.5 })
    assert.deepEqual(decodeAdvert(encodeAdvert({ ...advert({}), load: undefined })).load, {})
  })

  it('keeps the busiest entries only', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_LOAD + 20 }, (_, i) => [`app/c#${i}`, i + 1]))
    const load = decodeAdvert(encodeAdvert(advert(many))).load ?? {}
    assert.equal(Object.keys(load).length, MAX_LOAD)
    assert.equal(load['app/c#0'], undefined, 'the quietest are left out')
    assert.equal(load[`app/c#${MAX_LOAD + 19}`], MAX_LOAD + 20)
  })

  it('refuses too many entries, empty, over-long and repeated keys with a one-line reason', () => {
    assert.throws(() => decodeAdvert(raw(Array.from({ length: MAX_LOAD + 1 }, (_, i) => ({ key: `k${i}`, milli: 1 })))), /load/)
    assert.throws(() => decodeAdvert(raw([{ key: '', milli: 1 }])), /load key of 0 characters/)
    assert.throws(() => decodeAdvert(raw([{ key: 'k'.repeat(201), milli: 1 }])), /load key of 201 characters/)
    assert.throws(() => decodeAdvert(raw([{ key: 'k', milli: 1 }, { key: 'k', milli: 2 }])), /load key "k" twice/)
    assert.throws(() => decodeAdvert(raw([{ key: '__proto__', milli: 1 }, { key: '__proto__', milli: 1 }])), /twice/)
  })
})
