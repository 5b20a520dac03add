// Admission of connections by mesh membership. TCP and relayed connections pass through
// pnet, so only holders of the mesh key get that far. WebRTC connections do not (they are
// DTLS-encrypted end to end): one is admitted only from a current member, i.e. a peer with
// a verified capacity advert in the view or a bootstrap peer of the invite.
// WebRTC addresses are dialled only by the upgrade: an ordinary dial of a peer that picked
// one would wait for a punch that may never succeed instead of using the relay.
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isIndirectPath, isWebRTCAddr, type PeerPath } from './peer-path.js'

export interface MembershipGaterInit {
  /** a current member: a peer with a verified capacity advert in the view, or a bootstrap peer of the invite */
  isMember: (peer: string) => boolean
  /** a WebRTC address the upgrade is dialling now (default: none) */
  mayDialWebRTC?: (addr: Multiaddr) => boolean
  /** how this node reaches a peer now (peer-path.ts; default: directly) */
  pathTo?: (peer: string) => PeerPath | undefined
  /** one of this node's own addresses (default: none) */
  isOwn?: (addr: Multiaddr) => boolean
}

/** the relay peer of a circuit address (`…/p2p/<relay>/p2p-circuit/…`), else undefined */
export function relayOf (addr: Multiaddr): string | undefined {
  const parts = addr.getComponents()
  const circuit = parts.findIndex(c => c.name === 'p2p-circuit')
  const relay = circuit > 0 ? parts[circuit - 1] : undefined
  return relay?.name === 'p2p' ? relay.value : undefined
}

// Relay slots are granted only over direct TCP connections: a slot reserved over a WebRTC
// connection gives the reserving node a relayed address libp2p 3's address manager cannot
// parse (/webrtc/p2p/<relay>/p2p-circuit), and it throws out of an event listener.
// For the same reason no dial goes through a relay this node reaches only over WebRTC or
// another relay: that member grants no slot to this node's peers behind NAT, and the
// attempts (a dial of a dead member tried its circuit addresses through a home several
// times a second) open and reset a data channel each, a churn under which the WebRTC
// connection between two homes stopped opening new channels (netns nat-webrtc).
// A dial of one of the node's own addresses (an invite's loopback address, seen from
// another host) is refused before it connects to itself (own-address.ts).
export function membershipGater (init: MembershipGaterInit): ConnectionGater {
  const { isMember, mayDialWebRTC = () => false, pathTo = () => 'direct', isOwn = () => false } = init
  const deny = (peer: PeerId, conn: MultiaddrConnection): boolean => isWebRTCAddr(conn.remoteAddr) && !isMember(peer.toString())
  const viaIndirectRelay = (addr: Multiaddr): boolean => {
    const relay = relayOf(addr)
    return relay !== undefined && isIndirectPath(pathTo(relay))
  }
  return {
    denyInboundRelayReservation: (peer: PeerId) => pathTo(peer.toString()) !== 'direct',
    denyDialMultiaddr: (addr: Multiaddr) => (isWebRTCAddr(addr) ? !mayDialWebRTC(addr) : viaIndirectRelay(addr)) || isOwn(addr),
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny
  }
}
