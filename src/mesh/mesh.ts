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
  const libp2p = await createMeshLibp2p({
    privateKey: init.privateKey,
    mesh: init.mesh,
    listen: init.listen ?? ['/ip4/0.0.0.0/tcp/0'],
    datastore: init.datastore,
    logger,
    metrics: init.metrics,
    upnp: init.upnp
  })
  const addresses = (): string[] => libp2p.getMultiaddrs().map(a => a.toString())
  const hangUp = async (peer: PeerId): Promise<void> => { await libp2p.hangUp(peer) }
  const capacity = createCapacityService({ pubsub: libp2p.services.pubsub, privateKey: init.privateKey, addresses, hangUp }, {
    mesh: init.mesh.name,
    contributed: init.contributed,
    name: init.name,
    interval: init.capacityInterval,
    missedPeriods: init.missedPeriods
  })
  const bootstrap = (init.bootstrap ?? [])
    .map(a => typeof a === 'string' ? multiaddr(a) : a)
    .filter(a => a.getComponents().findLast(c => c.name === 'p2p')?.value !== peerId)
  const discovery: Discovery = createDiscovery({ libp2p }, { bootstrap })

  return {
    peerId,
    config: init.mesh,
    libp2p,
    capacity,
    protocols: meshProtocols(init.mesh.name),
    addresses,
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
      discovery.start()
      await capacity.start()
    },
    async stop () {
      running = false
      discovery.stop()
      await capacity.stop()
      await libp2p.stop()
    }
  }
}
