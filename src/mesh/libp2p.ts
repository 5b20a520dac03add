// The libp2p node of one mesh member: TCP, pnet (the mesh key), Noise, Yamux, identify,
// ping, a private Kademlia DHT on the mesh's own protocol id, gossipsub. Settings are
// tuned for small friend meshes (tens of nodes, often many on one host in tests).
// Home servers behind NAT: every member serves circuit relay v2 (with limits) and listens
// on /p2p-circuit, so a NAT'd node reserves a slot on a reachable member and is dialable
// through it; DCUtR upgrades a relayed connection to a direct one where the other side has
// a public address; UPnP/NAT-PMP maps a port where the home router offers it. pnet
// protects relayed connections too: only mesh members can use a relay.
// Two homes behind NATs also listen on /webrtc: webrtc-upgrade.ts punches a WebRTC
// connection between them through the relay's signalling, with STUN only from mesh members
// (ice-servers.ts); WebRTC bypasses pnet, so the connection gater admits only members.
// No AutoNAT: public listen addresses are announced from the start (public-addresses.ts),
// and @libp2p/autonat 3's dial-back server closes the connection it dialled even when
// openConnection handed it the requester's existing one: every AutoNAT request then cut a
// live member connection (seen on the namespace internet as "peer … is down" churn).
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { preSharedKey } from '@libp2p/pnet'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService, type CircuitRelayTransportComponents } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { webRTC } from '@libp2p/webrtc'
import type { ComponentLogger, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Identify } from '@libp2p/identify'
import type { Datastore } from 'interface-datastore'
import { meshProtocols, toSwarmKey, type MeshConfig } from './mesh-config.js'
import { publicListenAddresses } from './public-addresses.js'
import { membershipGater } from './membership-gater.js'
import { isOwnAddress } from './own-address.js'
import { withPacedWalk } from './paced-walk.js'
import type { PeerPath } from './peer-path.js'

export type MeshServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  relay: CircuitRelayService
  dcutr: unknown
  upnp?: unknown
}

export type MeshLibp2p = Libp2p<MeshServices>

export interface MeshLibp2pInit {
  privateKey: PrivateKey
  mesh: MeshConfig
  /** listen multiaddrs, e.g. /ip4/0.0.0.0/tcp/4017 */
  listen: string[]
  /** persistent store for the peer store and DHT; in-memory if absent */
  datastore?: Datastore
  /** libp2p's component logger; the mesh passes one that notices refused connections */
  logger?: ComponentLogger
  /** libp2p's own metrics (connections, streams, bytes per protocol, DHT, gossipsub) */
  metrics?: Libp2pOptions['metrics']
  /**
   * ask the home router for a port mapping (UPnP IGD / NAT-PMP). Off unless asked: its
   * SSDP search is multicast on the host's real network.
   */
  upnp?: boolean
  /** STUN URLs for WebRTC (stun:host:port), read at each connection; default none */
  iceServers?: () => string[]
  /** whether a peer is a current mesh member (admits its WebRTC connections); default no one */
  isMember?: (peer: string) => boolean
  /** whether a WebRTC address may be dialled now (only the upgrade dials them); default never */
  mayDialWebRTC?: (addr: Multiaddr) => boolean
  /** how a peer is reached now (peer-path.ts): only peers reached over direct TCP get relay slots, and no dial goes through a relay reached otherwise; default directly */
  pathTo?: (peer: string) => PeerPath | undefined
}

export async function createMeshLibp2p (init: MeshLibp2pInit): Promise<MeshLibp2p> {
  const protocols = meshProtocols(init.mesh.name)
  // the gater is made before the node whose listen addresses it checks
  let node: MeshLibp2p | undefined
  const isOwn = (addr: Multiaddr): boolean => node !== undefined && isOwnAddress(addr, node.getMultiaddrs())
  const relayTransport = circuitRelayTransport({ reservationCompletionTimeout: 20_000 })
  node = await createLibp2p<MeshServices>({
    privateKey: init.privateKey,
    start: false,
    datastore: init.datastore,
    logger: init.logger,
    metrics: init.metrics,
    // /p2p-circuit: hold a reservation on a relay, so the node is dialable behind NAT
    // public listen addresses are announced without waiting for peers to confirm them
    addresses: { listen: [...init.listen, '/p2p-circuit', '/webrtc'], appendAnnounce: publicListenAddresses(init.listen) },
    transports: [
      tcp(),
      // its search for relays walks the DHT at a slowing pace (paced-walk.ts)
      (components: CircuitRelayTransportComponents) => relayTransport(withPacedWalk(components)),
      // iceServers is always set: left out, the transport would use public STUN servers
      webRTC({ rtcConfiguration: () => ({ iceServers: (init.iceServers?.() ?? []).map(urls => ({ urls })) }) })
    ],
    connectionGater: membershipGater({ isMember: init.isMember ?? (() => false), mayDialWebRTC: init.mayDialWebRTC, pathTo: init.pathTo, isOwn }),
    connectionProtector: preSharedKey({ psk: toSwarmKey(init.mesh.key) }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: 256,
      // every node of a local test mesh dials from 127.0.0.1: the per-host inbound rate
      // limit (default 5/s) would refuse most of them
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 128,
      dialTimeout: 10_000
    },
    // a busy event loop (many nodes on one machine) makes pings late: dropping the
    // connection for it only causes reconnect churn. Dead peers are noticed by TCP and by
    // missed capacity heartbeats.
    connectionMonitor: { abortConnectionOnPingFailure: false },
    services: {
      identify: identify(),
      ping: ping(),
      // relayed connections carry Stem's own protocols between NAT'd members whose hole
      // punch failed, so they are not "limited" (libp2p refuses protocols on limited
      // connections); the relay is bounded by reservations and concurrent hop streams
      relay: circuitRelayServer({
        reservations: { maxReservations: 32, applyDefaultLimit: false },
        maxInboundHopStreams: 64,
        maxOutboundHopStreams: 64
      }),
      dcutr: dcutr(),
      // a mapping the router granted is announced as is (there is no AutoNAT to confirm it)
      ...(init.upnp === true ? { upnp: uPnPNAT({ autoConfirmAddress: true }) } : {}),
      dht: kadDHT({
        protocol: protocols.kad,
        // a friend mesh is private and every member is a server (dialable) by design
        clientMode: false,
        // home servers and local test meshes live on private addresses: keep them all
        peerInfoMapper: passthroughMapper,
        kBucketSize: 20,
        // in a small mesh one response already holds most peers: few parallel requests
        alpha: 3,
        initialQuerySelfInterval: 500,
        querySelfInterval: 30_000,
        allowQueryWithZeroPeers: false
      }),
      pubsub: gossipsub({
        // capacity adverts are Stem frames signed by their subject: no second signature
        globalSignaturePolicy: 'StrictNoSign',
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        fallbackToFloodsub: false,
        emitSelf: false,
        heartbeatInterval: 700,
        // own adverts go to every subscribed peer directly (floodPublish); a small gossip
        // mesh degree keeps the relayed duplicates of each advert few
        D: 4,
        Dlo: 3,
        Dhi: 6,
        Dlazy: 3,
        // every member holds the mesh key, and home meshes or tests put many nodes behind
        // one IP: the per-IP colocation penalty would graylist them
        scoreParams: { IPColocationFactorWeight: 0 }
      })
    }
  })
  return node
}
