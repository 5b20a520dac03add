// One member of a mesh: the libp2p node, discovery and capacity gossip, started and
// stopped together. Higher layers (raft, cells, topology) get `libp2p` for their own
// protocols (`protocols` names them) and `capacity.view` for placement.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Datastore } from 'interface-datastore'
import type { PeerId } from '@libp2p/interface'
import { peerIdOf, type PrivateKey } from '../wire/keys.js'
import { createLogger } from '../util/logger.js'
import { createMeshLibp2p, type MeshLibp2p, type MeshLibp2pInit } from './libp2p.js'
import { createDiscovery, type Discovery } from './discovery.js'
import { createCapacityService, type CapacityService } from './capacity-service.js'
import { meshProtocols, type MeshConfig } from './mesh-config.js'
import { encodeInvite } from './invite.js'
import { createRefusalLogger } from './refusal-logger.js'
import type { Resources } from './capacity.js'
import { createStunResponder, type StunResponder } from './stun-server.js'
import { meshIceServers } from './ice-servers.js'
import { createWebRTCUpgrade, type WebRTCUpgradeComponents } from './webrtc-upgrade.js'
import { peerPath, type PeerPath } from './peer-path.js'

export interface MeshInit {
  privateKey: PrivateKey
  mesh: MeshConfig
  /** listen multiaddrs (default /ip4/0.0.0.0/tcp/0) */
  listen?: string[]
  /** multiaddrs with /p2p/<id> to join through */
  bootstrap?: Array<Multiaddr | string>
  /** persistent peer store; in-memory if absent */
  datastore?: Datastore
  contributed: Resources
  /** a name people read for this node, advertised with its capacity */
  name?: string
  /** capacity heartbeat interval, ms (default 2000) */
  capacityInterval?: number
  missedPeriods?: number
  /** libp2p's own metrics, e.g. libp2pMetrics() of src/metrics */
  metrics?: MeshLibp2pInit['metrics']
  /** ask the home router for a port mapping (UPnP IGD / NAT-PMP); off by default */
  upnp?: boolean
  /** told about every WebRTC upgrade attempt and its outcome (for /metrics) */
  onUpgrade?: WebRTCUpgradeComponents['onUpgrade']
}

export interface Mesh {
  readonly peerId: string
  readonly config: MeshConfig
  readonly libp2p: MeshLibp2p
  readonly capacity: CapacityService
  readonly protocols: ReturnType<typeof meshProtocols>
  start: () => Promise<void>
  /** announces leaving, then closes every connection */
  stop: () => Promise<void>
  /** listen addresses, each ending in /p2p/<id> */
  addresses: () => string[]
  /** peer ids with an open direct connection */
  connectedPeers: () => Set<string>
  /** how this node reaches a peer now (SPEC §6 `path`), undefined when not connected */
  peerPath: (peer: string) => PeerPath | undefined
  /** resolves once the node has an open connection to a peer; rejects when `signal` aborts */
  connected: (signal: AbortSignal) => Promise<void>
  /** a token that joins this mesh through this node */
  invite: () => string
}

export async function createMesh (init: MeshInit): Promise<Mesh> {
  const log = createLogger('mesh')
  const peerId = peerIdOf(init.privateKey.publicKey)
  let running = false
  const logger = createRefusalLogger((remoteAddr, error) => {
    // upgrades cut short by our own shutdown or by the dialler giving up are not refusals
    if (!running || error.name === 'AbortError' || error.name === 'TimeoutError') return
    const host = remoteAddr.split('/tcp/')[0]
    log.warnOnce(`refused:${host}`, `refused a connection from ${host}: its handshake failed (${error.message}) — a node with another mesh key? (logged once per host)`)
  })
  const bootstrap = (init.bootstrap ?? [])
    .map(a => typeof a === 'string' ? multiaddr(a) : a)
    .filter(a => a.getComponents().findLast(c => c.name === 'p2p')?.value !== peerId)
  const bootstrapIds = new Set(bootstrap.map(a => a.getComponents().findLast(c => c.name === 'p2p')?.value).filter(id => id != null))
  // set once the capacity service exists (it needs the libp2p node first)
  let isMember = (peer: string): boolean => bootstrapIds.has(peer)
  let iceServers = (): string[] => []
  let mayDialWebRTC = (_addr: Multiaddr): boolean => false
  const libp2p = await createMeshLibp2p({
    privateKey: init.privateKey,
    mesh: init.mesh,
    listen: init.listen ?? ['/ip4/0.0.0.0/tcp/0'],
    datastore: init.datastore,
    logger,
    metrics: init.metrics,
    upnp: init.upnp,
    iceServers: () => iceServers(),
    isMember: peer => isMember(peer),
    mayDialWebRTC: addr => mayDialWebRTC(addr),
    pathTo: peer => peerPath(libp2p.getConnections().filter(c => c.remotePeer.toString() === peer))
  })
  const addresses = (): string[] => libp2p.getMultiaddrs().map(a => a.toString())
  const hangUp = async (peer: PeerId): Promise<void> => { await libp2p.hangUp(peer) }
  const capacity = createCapacityService({ pubsub: libp2p.services.pubsub, privateKey: init.privateKey, addresses, connections: peer => libp2p.getConnections(peer), hangUp }, {
    mesh: init.mesh.name,
    contributed: init.contributed,
    name: init.name,
    interval: init.capacityInterval,
    missedPeriods: init.missedPeriods
  })
  isMember = peer => capacity.view.get(peer) != null || bootstrapIds.has(peer)
  iceServers = () => meshIceServers(capacity.view.list(), libp2p.getConnections()
    .map(c => ({ remotePeer: c.remotePeer.toString(), remoteAddr: c.remoteAddr, direction: c.direction, status: c.status })))
  const upgrade = createWebRTCUpgrade({ libp2p, isMember, members: () => capacity.view.list(), onUpgrade: init.onUpgrade })
  mayDialWebRTC = upgrade.dialling
  let stun: StunResponder | undefined
  const discovery: Discovery = createDiscovery({ libp2p }, { bootstrap })

  return {
    peerId,
    config: init.mesh,
    libp2p,
    capacity,
    protocols: meshProtocols(init.mesh.name),
    addresses,
    peerPath: peer => peerPath(libp2p.getConnections().filter(c => c.remotePeer.toString() === peer)),
    connectedPeers: () => new Set(libp2p.getConnections().filter(c => c.status === 'open').map(c => c.remotePeer.toString())),
    async connected (signal) {
      if (libp2p.getConnections().some(c => c.status === 'open')) return
      await new Promise<void>((resolve, reject) => {
        const done = (): void => {
          libp2p.removeEventListener('connection:open', done)
          signal.removeEventListener('abort', aborted)
          resolve()
        }
        const aborted = (): void => {
          libp2p.removeEventListener('connection:open', done)
          reject(signal.reason)
        }
        if (signal.aborted) { aborted(); return }
        libp2p.addEventListener('connection:open', done)
        signal.addEventListener('abort', aborted, { once: true })
      })
    },
    invite: () => encodeInvite({ mesh: init.mesh.name, key: init.mesh.key, bootstrap: libp2p.getMultiaddrs() }),
    async start () {
      await libp2p.start()
      running = true
      stun = await startStun(libp2p, log)
      discovery.start()
      await capacity.start()
      upgrade.start()
    },
    async stop () {
      running = false
      upgrade.stop()
      stun?.stop()
      discovery.stop()
      await capacity.stop()
      await libp2p.stop()
    }
  }
}

/**
 * Answer STUN on the UDP port of the node's TCP listen port, where WebRTC peers of the
 * mesh look for it (ice-servers.ts). A port already taken only costs those peers a STUN
 * server: the node runs on without one.
 */
async function startStun (libp2p: MeshLibp2p, log: ReturnType<typeof createLogger>): Promise<StunResponder | undefined> {
  const port = libp2p.getMultiaddrs().map(a => a.getComponents()).find(parts => parts[1]?.name === 'tcp' && parts[0].name === 'ip4')?.[1].value
  if (port === undefined) return undefined
  const stun = createStunResponder({ port: Number(port) })
  try {
    await stun.start()
    return stun
  } catch (err) {
    log.warn(`no STUN responder on UDP port ${port}: ${(err as Error).message} (WebRTC peers use other members' STUN)`)
    return undefined
  }
}
