// The pure logic of keyed cells: key addresses (percent-encoding, malformed, oversized,
// truncated and forged input), the stable key → shard hash, the keyed export of a bundle.
import { describe, it } from 'mocha'
import assert from 'node:assert/strict'
import { decodeKey, encodeKey, instanceAddress, parseAddress, MAX_KEY_BYTES } from '../../src/cells/address.js'
import { keyHash, keyedIdleOf, shardAddress, shardOfKey, withKeyedExport, DEFAULT_SHARDS } from '../../src/cells/keys.js'

describe('cells: key addresses', () => {
  it('parses app/cell/<key> and app/cell#s/<key>, decoding the key', () => {
    assert.deepEqual(parseAddress('shop/cart/alice'), { app: 'shop', cell: 'cart', replica: undefined, key: 'alice' })
    assert.deepEqual(parseAddress('shop/cart#3/alice'), { app: 'shop', cell: 'cart', replica: 3, key: 'alice' })
    assert.equal(parseAddress('shop/cart/a%2Fb%23c%25d').key, 'a/b#c%d')
    assert.equal(parseAddress('shop/cart/caf%C3%A9').key, 'café')
    assert.equal(parseAddress('shop/cart/café ok').key, 'café ok')
    assert.equal(parseAddress('shop/cart').key, undefined)
  })

  it('round-trips keys through encodeKey', () => {
    for (const key of ['alice', 'a/b', '#1', '100%', '%2F', 'ü/€/😀', ' spaced ', 'x'.repeat(MAX_KEY_BYTES)]) {
      assert.equal(decodeKey(encodeKey(key)), key)
      assert.equal(parseAddress(`shop/cart/${encodeKey(key)}`).key, key)
    }
    assert.equal(encodeKey('a/b#c%'), 'a%2Fb%23c%25')
  })

  it('refuses malformed, truncated and oversized keys with one line naming why', () => {
    const refused: Array<[string, RegExp]> = [
      ['shop/cart/', /invalid key: it is empty/],
      ['shop/cart/a/b', /percent-encode '\/' as %2F/],
      ['shop/cart/a#b', /percent-encode/],
      ['shop/cart/100%', /'%' must start an escape %XX/],
      ['shop/cart/a%2', /'%' must start an escape %XX/],
      ['shop/cart/a%zz', /'%' must start an escape %XX/],
      ['shop/cart/%C3', /its escapes are not UTF-8/],
      ['shop/cart/%FF%FE', /its escapes are not UTF-8/],
      ['shop/cart/a%0Ab', /control character/],
      ['shop/cart/a\tb', /control character/],
      ['shop/cart/\ud800', /lone surrogate/],
      [`shop/cart/${'k'.repeat(MAX_KEY_BYTES + 1)}`, /longer than 256 bytes/],
      [`shop/cart/${'é'.repeat(129)}`, /longer than 256 bytes/],
      [`shop/cart/${'%41'.repeat(257)}`, /longer than 256 bytes/],
      [`shop/cart/${'k'.repeat(5000)}`, /invalid cell address/],
      ['shop/cart#x/alice', /invalid cell address/],
      ['/cart/alice', /invalid cell address/]
    ]
    for (const [address, why] of refused) {
      assert.throws(() => parseAddress(address), (err: Error) => why.test(err.message) && !err.message.includes('\n'), address)
    }
    assert.throws(() => encodeKey(''), /empty/)
    assert.throws(() => encodeKey('a\nb'), /control character/)
    assert.throws(() => encodeKey('é'.repeat(129)), /longer than 256 bytes/)
  })

  it('names the instance of an address (a keyed one: its shard)', () => {
    assert.equal(instanceAddress('shop/cart#2/alice'), 'shop/cart#2')
    assert.equal(instanceAddress('shop/cart#2'), 'shop/cart#2')
    assert.equal(instanceAddress('shop/cart/alice'), undefined)
  })
})

describe('cells: key shards', () => {
  it('hashes keys with 32-bit FNV-1a of their UTF-8 (a fixed format)', () => {
    assert.equal(keyHash(''), 0x811c9dc5)
    assert.equal(keyHash('a'), 0xe40c292c)
    assert.equal(keyHash('foobar'), 0xbf9cf968)
    assert.equal(keyHash('é'), Math.imul((Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) >>> 0) ^ 0xa9, 0x01000193) >>> 0)
  })

  it('spreads keys over the shards', () => {
    const counts = new Array(DEFAULT_SHARDS).fill(0)
    for (let i = 0; i < 16_000; i++) counts[shardOfKey(`user-${i}`, DEFAULT_SHARDS)]++
    for (const n of counts) assert.ok(n > 800 && n < 1200, `shard sizes ${counts.join(' ')}`)
  })

  it('adds the shard to a keyed address and refuses a forged one', () => {
    const shard = shardOfKey('a/b', 16)
    assert.equal(shardAddress('shop/cart/a%2Fb', 16), `shop/cart#${shard}/a%2Fb`)
    assert.equal(shardAddress(`shop/cart#${shard}/a%2Fb`, 16), `shop/cart#${shard}/a%2Fb`)
    assert.throws(() => shardAddress(`shop/cart#${(shard + 1) % 16}/a%2Fb`, 16), /belongs to shard/)
    assert.equal(shardAddress('shop/cart#1', 16), 'shop/cart#1')
    assert.throws(() => shardOfKey('a', 0), /invalid shard count 0/)
  })

  it('marks a bundle keyed with its idle time, before the source map', () => {
    const code = 'export default class A {}\n//# sourceMappingURL=data:application/json;base64,e30=\n'
    const keyed = withKeyedExport(code, 300_000)
    assert.ok(keyed.endsWith('//# sourceMappingURL=data:application/json;base64,e30=\n'))
    assert.equal(keyedIdleOf(keyed), 300_000)
    assert.equal(keyedIdleOf(code), 0)
    assert.equal(keyedIdleOf('export const __stemKeyed = { idle: x };\n'), 0)
    assert.throws(() => withKeyedExport(code, 0), /invalid idle time/)
  })
})
