// Pure parts of the WebRTC upgrade: how a peer is reached, which members serve STUN to
// this node, who may open a WebRTC connection, and the address that signals via a relay.
import assert from 'node:assert/strict'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { MultiaddrConnection } from '@libp2p/interface'
import { peerPath, type PeerPath } from '../../src/mesh/peer-path.js'
import { meshIceServers } from '../../src/mesh/ice-servers.js'
import { membershipGater, relayOf } from '../../src/mesh/membership-gater.js'
import { failureReason, relayedDialAddr, webrtcAddrVia } from '../../src/mesh/webrtc-upgrade.js'

const RELAY = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const OTHER = '12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDMp4F9xnEV8ikkwHd1'
const DEST = '12D3KooWEd2uWF5242u42TpqghHwHYijAGFSxFECRyfnkyfw8EEg'
const tcp = multiaddr('/ip4/7.77.0.11/tcp/4017')
const relayed = multiaddr(`/ip4/7.77.0.11/tcp/4017/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`)
const webrtcOut = multiaddr(`/ip4/7.77.0.11/tcp/4017/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`)
const webrtcIn = multiaddr(`/webrtc/p2p/${PEER}`)
const open = (remoteAddr: typeof tcp, status = 'open'): { remoteAddr: typeof tcp, status: string } => ({ remoteAddr, status })

describe('mesh: WebRTC paths', () => {
  it('a peer is reached by webrtc before direct TCP before a relay, and not at all without an open connection', () => {
    assert.equal(peerPath([open(relayed), open(webrtcOut)]), 'webrtc')
    assert.equal(peerPath([open(webrtcIn)]), 'webrtc')
    assert.equal(peerPath([open(relayed), open(tcp)]), 'direct')
    assert.equal(peerPath([open(relayed)]), 'relayed')
    assert.equal(peerPath([open(tcp, 'closing'), open(relayed)]), 'relayed')
    assert.equal(peerPath([open(webrtcOut, 'closed')]), undefined)
    assert.equal(peerPath([]), undefined)
  })

  it('STUN servers are members whose advertised TCP address this node dialled, on that port', () => {
    const members = [
      { id: RELAY, addrs: ['/ip4/7.77.0.11/tcp/4017', '/ip4/127.0.0.1/tcp/4017', `/ip4/7.77.0.11/tcp/4017/p2p/${RELAY}/p2p-circuit`] },
      { id: OTHER, addrs: ['/ip4/7.77.0.12/tcp/4017', 'not a multiaddr'] }
    ]
    const conns = [
      { remotePeer: RELAY, remoteAddr: tcp, direction: 'outbound' as const, status: 'open' },
      // inbound: its remote port is an ephemeral one, not a listen port
      { remotePeer: OTHER, remoteAddr: multiaddr('/ip4/7.77.0.12/tcp/51234'), direction: 'inbound' as const, status: 'open' },
      { remotePeer: PEER, remoteAddr: relayed, direction: 'outbound' as const, status: 'open' }
    ]
    assert.deepEqual(meshIceServers(members, conns), ['stun:7.77.0.11:4017'])
    // an address the member did not advertise (signed) is not used, nor a non-member's
    assert.deepEqual(meshIceServers([{ id: RELAY, addrs: ['/ip4/7.77.0.99/tcp/4017'] }], conns), [])
    assert.deepEqual(meshIceServers([], conns), [])
    // dialled, but the connection is closing
    assert.deepEqual(meshIceServers(members, [{ ...conns[0], status: 'closing' }]), [])
  })

  it('the gater refuses WebRTC connections of non-members and leaves pnet-protected ones alone', async () => {
    const gater = membershipGater({ isMember: peer => peer === PEER })
    const conn = (remoteAddr: typeof tcp): MultiaddrConnection => ({ remoteAddr }) as unknown as MultiaddrConnection
    for (const method of ['denyInboundEncryptedConnection', 'denyOutboundEncryptedConnection', 'denyInboundUpgradedConnection', 'denyOutboundUpgradedConnection'] as const) {
      const deny = gater[method] as (peer: ReturnType<typeof peerIdFromString>, c: MultiaddrConnection) => boolean
      assert.equal(deny(peerIdFromString(OTHER), conn(webrtcIn)), true, `${method} admits a stranger over WebRTC`)
      assert.equal(deny(peerIdFromString(PEER), conn(webrtcIn)), false, `${method} refuses a member`)
      assert.equal(deny(peerIdFromString(OTHER), conn(tcp)), false, `${method} refuses TCP, which pnet guards`)
    }
  })

  it('the gater lets only the upgrade dial WebRTC addresses: an ordinary dial uses the relay', () => {
    const gater = membershipGater({ isMember: () => true, mayDialWebRTC: addr => addr.equals(webrtcOut) })
    assert.equal(gater.denyDialMultiaddr?.(webrtcOut), false)
    assert.equal(gater.denyDialMultiaddr?.(multiaddr(`/ip4/7.77.0.12/tcp/4017/p2p/${OTHER}/p2p-circuit/webrtc/p2p/${PEER}`)), true)
    assert.equal(gater.denyDialMultiaddr?.(relayed), false)
    assert.equal(membershipGater({ isMember: () => true }).denyDialMultiaddr?.(webrtcOut), true)
  })

  it('relay slots go only to peers reached over direct TCP', () => {
    const gater = membershipGater({ isMember: () => true, pathTo: peer => peer === PEER ? 'direct' : 'webrtc' })
    assert.equal(gater.denyInboundRelayReservation?.(peerIdFromString(PEER)), false)
    assert.equal(gater.denyInboundRelayReservation?.(peerIdFromString(OTHER)), true)
  })

  it('no dial goes through a relay reached only over WebRTC or another relay; an unconnected or direct one is used', () => {
    const paths = new Map<string, PeerPath | undefined>([[RELAY, 'direct'], [OTHER, 'webrtc'], [PEER, 'relayed']])
    const gater = membershipGater({ isMember: () => true, pathTo: peer => paths.get(peer) })
    const via = (relay: string): Multiaddr => multiaddr(`/ip4/7.77.0.12/tcp/4017/p2p/${relay}/p2p-circuit/p2p/${DEST}`)
    assert.equal(relayOf(via(OTHER)), OTHER)
    assert.equal(relayOf(tcp), undefined)
    assert.equal(gater.denyDialMultiaddr?.(via(RELAY)), false, 'a relay reached over direct TCP')
    assert.equal(gater.denyDialMultiaddr?.(via(OTHER)), true, 'a home reached over WebRTC')
    assert.equal(gater.denyDialMultiaddr?.(via(PEER)), true, 'a member reached through another relay')
    paths.delete(RELAY)
    assert.equal(gater.denyDialMultiaddr?.(via(RELAY)), false, 'a relay not connected yet: the dial reaches it first')
    assert.equal(gater.denyDialMultiaddr?.(tcp), false)
  })

  it('a member with no connection is dialled at an advertised relayed address whose relay is neither this node nor reached only indirectly', () => {
    const paths = new Map<string, PeerPath | undefined>([[OTHER, 'webrtc']])
    const at = (relay: string): string => `/ip4/7.77.0.11/tcp/4017/p2p/${relay}/p2p-circuit`
    const pick = (addrs: string[]): string | undefined => relayedDialAddr(addrs, PEER, DEST, peer => paths.get(peer))?.toString()
    // DEST is this node: the member reserved its slot here
    assert.equal(pick([at(DEST), at(OTHER), '/ip4/7.77.0.11/tcp/4017', at(RELAY)]), `${at(RELAY)}/p2p/${PEER}`)
    assert.equal(pick([at(DEST), at(OTHER)]), undefined)
    // an advert's address this node cannot parse is skipped, not thrown out of the timer
    assert.equal(pick(['/garbage/p2p-circuit', at(RELAY)]), `${at(RELAY)}/p2p/${PEER}`)
    assert.equal(pick([]), undefined)
  })

  it('the WebRTC address signals through the relay of the relayed connection', () => {
    assert.equal(webrtcAddrVia(relayed, PEER)?.toString(), webrtcOut.toString())
    assert.equal(webrtcAddrVia(tcp, PEER), undefined)
  })

  it('names why an attempt failed', () => {
    const named = (name: string): Error => Object.assign(new Error('x'), { name })
    assert.equal(failureReason(named('TimeoutError')), 'timeout')
    assert.equal(failureReason(named('AbortError')), 'timeout')
    assert.equal(failureReason(named('ConnectionInterceptedError')), 'denied')
    assert.equal(failureReason(new Error('ICE failed')), 'error')
  })
})
