// How this node reaches a peer, from its open connections (SPEC §6 `path`): a WebRTC
// connection (hole punched, encrypted by DTLS), a direct TCP connection, or only a
// circuit relay hop through a third member.
import type { Multiaddr } from '@multiformats/multiaddr'

export type PeerPath = 'direct' | 'relayed' | 'webrtc'

export interface ConnectionLike {
  remoteAddr: Multiaddr
  status: string
}

const has = (addr: Multiaddr, name: string): boolean => addr.getComponents().some(c => c.name === name)

export const isWebRTCAddr = (addr: Multiaddr): boolean => has(addr, 'webrtc')
export const isRelayedAddr = (addr: Multiaddr): boolean => has(addr, 'p2p-circuit') && !isWebRTCAddr(addr)

/** the best path among a peer's open connections, or undefined when there is none */
export function peerPath (connections: ConnectionLike[]): PeerPath | undefined {
  const open = connections.filter(c => c.status === 'open')
  if (open.some(c => isWebRTCAddr(c.remoteAddr))) return 'webrtc'
  if (open.some(c => !isRelayedAddr(c.remoteAddr))) return 'direct'
  return open.length > 0 ? 'relayed' : undefined
}

/** a path through something else than a TCP connection of our own: a relay reached so cannot carry a circuit to a third member (membership-gater.ts) */
export const isIndirectPath = (path: PeerPath | undefined): boolean => path === 'webrtc' || path === 'relayed'
