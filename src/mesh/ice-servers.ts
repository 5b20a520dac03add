// The ICE (STUN) servers of a node's WebRTC connections, taken only from the mesh itself:
// every member answers STUN on the UDP port equal to its TCP listen port (stun-server.ts),
// and a member counts as a STUN server for this node when its signed capacity advert lists
// a plain TCP address this node has dialled directly (so it is reachable from here, and
// sees this node's public address). No member qualifies: no ICE servers at all, never the
// public ones WebRTC libraries fall back to.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { isRelayedAddr, isWebRTCAddr } from './peer-path.js'

export interface MemberAddrs {
  id: string
  /** addresses from the member's signed capacity advert */
  addrs: string[]
}

export interface OpenConnection {
  remotePeer: string
  remoteAddr: Multiaddr
  direction: 'inbound' | 'outbound'
  status: string
}

/** libdatachannel (libjuice) uses one STUN server per connection, picked among these */
const MAX_SERVERS = 4

/** `host:port` of a plain /ip4|ip6/…/tcp/… address (a trailing /p2p/<id> allowed), else undefined */
function tcpHostPort (addr: Multiaddr): string | undefined {
  if (isRelayedAddr(addr) || isWebRTCAddr(addr)) return undefined
  const parts = addr.getComponents().filter(c => c.name !== 'p2p')
  if (parts.length !== 2 || parts[1].name !== 'tcp') return undefined
  if (parts[0].name === 'ip4') return `${parts[0].value}:${parts[1].value}`
  if (parts[0].name === 'ip6') return `[${parts[0].value}]:${parts[1].value}`
  return undefined
}

/** `stun:host:port` URLs of members this node reaches directly, at most MAX_SERVERS */
export function meshIceServers (members: MemberAddrs[], connections: OpenConnection[]): string[] {
  const out = new Set<string>()
  for (const m of members) {
    const advertised = new Set<string>()
    for (const a of m.addrs) {
      try {
        const hp = tcpHostPort(multiaddr(a))
        if (hp !== undefined) advertised.add(hp)
      } catch {
        // an address this node cannot parse is no STUN server
      }
    }
    for (const c of connections) {
      if (c.remotePeer !== m.id || c.direction !== 'outbound' || c.status !== 'open') continue
      const hp = tcpHostPort(c.remoteAddr)
      if (hp !== undefined && advertised.has(hp)) out.add(`stun:${hp}`)
    }
  }
  return [...out].sort().slice(0, MAX_SERVERS)
}
