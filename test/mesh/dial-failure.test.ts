// The line a joiner logs when a bootstrap dial fails: refused in the handshake (another mesh
// key) or unreachable, also when libp2p wraps each address's error in one AggregateError.
import assert from 'node:assert/strict'
import { dialFailure } from '../../src/mesh/discovery.js'

const named = (name: string, message: string): Error => Object.assign(new Error(message), { name })
const addr = '/ip4/7.77.0.11/tcp/4017/p2p/12D3KooWPub'

describe('dialFailure', () => {
  it('a handshake failure says the peer refused us: a wrong or stale invite', () => {
    assert.match(dialFailure(addr, named('EncryptionFailedError', 'bad tag')), /^bootstrap \/ip4\/7\.77\.0\.11\S+: peer refused the connection: usually a wrong or stale invite \(another mesh key.*EncryptionFailedError: bad tag\)$/)
  })

  it('finds the refusal among the errors of a dial of several addresses', () => {
    const all = new AggregateError([named('Error', 'connect ECONNREFUSED 127.0.0.1:4017'), named('InvalidCryptoExchangeError', 'Message length too long')], 'All multiaddr dials failed')
    assert.match(dialFailure(addr, all), /peer refused the connection: usually a wrong or stale invite .*InvalidCryptoExchangeError: Message length too long\)$/)
  })

  it('a dial that reached this node itself (an invite\'s loopback address) is no refusal', () => {
    const self = '12D3KooWSelf'
    const mismatch = named('EncryptionFailedError', `Payload identity key ${self} does not match expected remote identity key 12D3KooWPub`)
    const down = new AggregateError([mismatch, named('Error', 'connect ECONNREFUSED 7.77.0.11:4017')], 'All multiaddr dials failed')
    assert.equal(dialFailure(addr, down, self), `bootstrap ${addr} unreachable (All multiaddr dials failed)`)
    const wrongKey = new AggregateError([mismatch, named('EncryptionFailedError', 'read ECONNRESET')], 'All multiaddr dials failed')
    assert.match(dialFailure(addr, wrongKey, self), /peer refused the connection: .*\(another mesh key.*; EncryptionFailedError: read ECONNRESET\)$/)
    // another node at the address (a stale invite) is a refusal
    assert.match(dialFailure(addr, named('EncryptionFailedError', 'Payload identity key 12D3KooWOther does not match expected remote identity key 12D3KooWPub'), self), /peer refused the connection/)
  })

  it('an address nobody answers is unreachable', () => {
    const all = new AggregateError([named('Error', 'connect ECONNREFUSED 127.0.0.1:4017'), named('TimeoutError', 'timed out')], 'All multiaddr dials failed')
    assert.equal(dialFailure(addr, all), `bootstrap ${addr} unreachable (All multiaddr dials failed)`)
    assert.equal(dialFailure(addr, named('Error', 'connect EHOSTUNREACH')), `bootstrap ${addr} unreachable (connect EHOSTUNREACH)`)
  })
})
