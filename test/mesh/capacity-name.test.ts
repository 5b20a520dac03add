// A node's name (`stem start --name`) travels in its capacity adverts: round trip, none
// when not given, and a malformed or oversized name from the wire refused with one line.
import assert from 'node:assert/strict'
import { decodeAdvert, encodeAdvert, nodeNameProblem, type CapacityAdvert } from '../../src/mesh/capacity.js'
import { CapacityAdvert as AdvertMessage } from '../../src/wire/proto/capacity.js'

const base: CapacityAdvert = {
  peer: 'p', addrs: [], contributed: { cpu: 1, memory: 1024, cells: 1 }, free: { cpu: 1, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000
}
const raw = (name: string): Uint8Array => AdvertMessage.encode({
  peer: 'p', addrs: [], contributed: { cpu: 1000, memory: 1024, cells: 1 }, free: { cpu: 1000, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000, load: [], conditions: [], name
})

describe('capacity advert: node name', () => {
  it('round-trips a name; an advert without one has none', () => {
    assert.equal(decodeAdvert(encodeAdvert({ ...base, name: 'node-1' })).name, 'node-1')
    assert.equal('name' in decodeAdvert(encodeAdvert(base)), false)
    assert.equal(decodeAdvert(raw('')).name, undefined)
  })

  it('refuses names that are too long, empty-looking or carry other characters, from the wire and from --name', () => {
    for (const bad of ['x'.repeat(33), '-lead', 'a b', 'node\n2', 'ноль', '../etc']) {
      assert.throws(() => decodeAdvert(raw(bad)), /^Error: advert has an invalid node name /, JSON.stringify(bad))
      assert.match(nodeNameProblem(bad) ?? '', /^invalid node name .*: 1 to 32 letters, digits/)
    }
    assert.equal(nodeNameProblem('x'.repeat(32)), undefined)
    assert.equal(nodeNameProblem('home.server_2'), undefined)
    // a huge name is cut in the error message
    assert.ok((nodeNameProblem('y'.repeat(10_000)) ?? '').length < 200)
  })
})
