// Admission of connections by mesh membership. TCP and relayed connections pass through
// pnet, so only holders of the mesh key get that far. WebRTC connections do not (they are
// DTLS-encrypted end to end): one is admitted only from a current member, i.e. a peer with
// a verified capacity advert in the view or a bootstrap peer of the invite.
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { isWebRTCAddr } from './peer-path.js'

export function membershipGater (isMember: (peer: string) => boolean): ConnectionGater {
  const deny = (peer: PeerId, conn: MultiaddrConnection): boolean => isWebRTCAddr(conn.remoteAddr) && !isMember(peer.toString())
  return {
    denyInboundEncryptedConnection: deny,
    denyOutboundEncryptedConnection: deny,
    denyInboundUpgradedConnection: deny,
    denyOutboundUpgradedConnection: deny
  }
}
