// Repairs gossip with a connected member, which gossipsub never repairs itself while a
// connection to the member stays open. Two faults were seen:
//  - gossipsub runs a peer's streams on the connection it first met it on, and reacts only
//    to the peer's last connection closing. When that first connection closes while another
//    stays open (a relayed path whose relay died beside the WebRTC one it led to), or a
//    stream is reset, the side whose read failed drops the peer and the other keeps it with
//    no stream to it: neither hears the other again (netns: two homes lost each other when
//    the relay host died). A third node relaying the adverts hides it until that node dies
//    (keyed-processes: two survivors of a kill -9 expired each other, and the app's leader
//    removed a live member);
//  - it creates its outbound stream to a new peer once; if that fails the peer never learns
//    our subscription.
// The remedy reopens our stream on a connection that is open, without closing any: the
// other side sees a new inbound stream, takes us back as a peer and opens its own stream.
// Closing the connections instead would cut the only path a WebRTC pair has once its relay
// is gone (a new one needs the relay to signal).
import type { GossipSub } from '@libp2p/gossipsub'
import type { Connection, PeerId } from '@libp2p/interface'
import { isRelayedAddr } from './peer-path.js'

/** what gossipsub's implementation has beyond its GossipSub interface (checked at run time) */
export interface GossipInternals {
  getMeshPeers: (topic: string) => string[]
  getScore: (peer: string) => number
  /** its stream to each peer, by peer id */
  streamsOutbound: ReadonlyMap<string, { rawStream: { abort: (err: Error) => void } }>
  /** what it runs when the registrar reports a connection to a peer: adds the peer, opens its stream on `connection` */
  onPeerConnected: (peer: PeerId, connection: Connection) => void
}

export type Gossip = GossipSub & Partial<GossipInternals>

export type GossipFault = 'not a gossip peer' | 'no subscription' | 'no gossip stream to it'

/** watchdog checks (one per advert interval) a fault may last before it is repaired: a stream may still be opening */
export const FAULT_CHECKS: Record<GossipFault, number> = {
  'not a gossip peer': 2,
  'no gossip stream to it': 2,
  // the peer's own stream to us may still be opening from its queue
  'no subscription': 5
}

/** the open connection to a peer gossip can run on (not limited), preferring one that is not relayed */
export function gossipConnection (connections: Connection[]): Connection | undefined {
  const usable = connections.filter(c => c.status === 'open' && c.limits == null)
  return usable.find(c => !isRelayedAddr(c.remoteAddr)) ?? usable[0]
}

/** gossip's peers, the subscribers of a topic and our streams, looked up once per check */
export interface GossipSnapshot {
  peers: ReadonlySet<string>
  subscribers: ReadonlySet<string>
  streams?: ReadonlyMap<string, unknown>
}

export function gossipSnapshot (gossip: Gossip, topic: string): GossipSnapshot {
  return { peers: new Set(gossip.getPeers().map(p => p.toString())), subscribers: new Set(gossip.getSubscribers(topic).map(p => p.toString())), streams: gossip.streamsOutbound }
}

/** what is wrong with gossip with a member we hold an open connection to, if anything */
export function gossipFault (snapshot: GossipSnapshot, peer: string): GossipFault | undefined {
  if (!snapshot.peers.has(peer)) return 'not a gossip peer'
  if (!snapshot.subscribers.has(peer)) return 'no subscription'
  if (snapshot.streams !== undefined && !snapshot.streams.has(peer)) return 'no gossip stream to it'
  return undefined
}

/**
 * Opens our gossip stream to `peer` afresh on `connection`. The one we have, if any, is
 * reset first (gossipsub forgets it at once, and the other side, seeing a new stream, opens
 * its own). False when this gossipsub has no way to: the caller may close the connections
 * instead.
 */
export function reopenGossip (gossip: Gossip, peer: PeerId, connection: Connection): boolean {
  if (typeof gossip.onPeerConnected !== 'function') return false
  gossip.streamsOutbound?.get(peer.toString())?.rawStream.abort(new Error('gossip stream reopened by the watchdog'))
  gossip.onPeerConnected(peer, connection)
  return true
}
