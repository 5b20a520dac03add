// Admission of connections by mesh membership. TCP and relayed connections pass through
// pnet, so only holders of the mesh key get that far. WebRTC connections do not (they are
// DTLS-encrypted end to end): one is admitted only from a current member, i.e. a peer with
// a verified capacity advert in the view or a bootstrap peer of the invite.
// WebRTC addresses are dialled only by the upgrade: an ordinary dial of a peer that picked
// one would wait for a punch that may never succeed instead of using the relay.
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isWebRTCAddr } from './peer-path.js'

// Relay slots are granted only over direct TCP connections: a slot reserved over a WebRTC
// connection gives the reserving node a relayed address libp2p 3's address manager cannot
// parse (/webrtc/p2p/<relay>/p2p-circuit), and it throws out of an event listener.
// A dial of one of the node's own addresses (an invite's loopback address, seen from
// another host) is refused before it connects to itself (own-address.ts).
export function membershipGater (isMember: (peer: string) => boolean, mayDialWebRTC: (addr: Multiaddr) => boolean = () => false, reachedDirectly: (peer: string) => boolean = () => true, isOwn: (addr: Multiaddr) => boolean = () => false): ConnectionGater {
  const deny = (peer: PeerId, conn: MultiaddrConnection): boolean => isWebRTCAddr(conn.remoteAddr) && !isMember(peer.toString())
  return {
    denyInboundRelayReservation: (peer: PeerId) => !reachedDirectly(peer.toString()),
    denyDialMultiaddr: (addr: Multiaddr) => (isWebRTCAddr(addr) && !mayDialWebRTC(addr)) || isOwn(addr),
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny
  }
}
