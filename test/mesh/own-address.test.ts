// A dial of one of the node's own addresses (an invite's 127.0.0.1 seen from another host
// listening on the same port) is refused by the gater instead of reaching the node itself.
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { isOwnAddress } from '../../src/mesh/own-address.js'
import { membershipGater } from '../../src/mesh/membership-gater.js'

const SELF = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const PUB = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const own = [`/ip4/127.0.0.1/tcp/4017/p2p/${SELF}`, `/ip4/10.0.0.5/tcp/4017/p2p/${SELF}`, `/ip6/::1/tcp/4017/p2p/${SELF}`].map(a => multiaddr(a))

describe('mesh: dials of the node\'s own addresses', () => {
  it('an address with one of its own hosts and ports is its own, whatever peer id it names', () => {
    assert.ok(isOwnAddress(multiaddr(`/ip4/127.0.0.1/tcp/4017/p2p/${PUB}`), own))
    assert.ok(isOwnAddress(multiaddr('/ip4/10.0.0.5/tcp/4017'), own))
    assert.ok(isOwnAddress(multiaddr(`/ip6/::1/tcp/4017/p2p/${PUB}`), own))
  })

  it('another port, another host, a relayed address or an address without TCP is not', () => {
    assert.ok(!isOwnAddress(multiaddr(`/ip4/127.0.0.1/tcp/4018/p2p/${PUB}`), own))
    assert.ok(!isOwnAddress(multiaddr(`/ip4/7.77.0.11/tcp/4017/p2p/${PUB}`), own))
    assert.ok(!isOwnAddress(multiaddr(`/ip4/127.0.0.1/tcp/4017/p2p/${PUB}/p2p-circuit/p2p/${SELF}`), own))
    assert.ok(!isOwnAddress(multiaddr('/ip4/127.0.0.1/udp/4017'), own))
    assert.ok(!isOwnAddress(multiaddr('/ip4/127.0.0.1/tcp/4017'), []))
  })

  it('the gater refuses to dial them and leaves other addresses alone', async () => {
    const gater = membershipGater({ isMember: () => true, isOwn: a => isOwnAddress(a, own) })
    assert.equal(await gater.denyDialMultiaddr?.(multiaddr(`/ip4/127.0.0.1/tcp/4017/p2p/${PUB}`)), true)
    assert.equal(await gater.denyDialMultiaddr?.(multiaddr(`/ip4/7.77.0.11/tcp/4017/p2p/${PUB}`)), false)
  })
})
