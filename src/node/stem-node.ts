// The composition root: one Stem node = identity + mesh (libp2p, discovery, capacity
// gossip) + the app layers (cells, messaging, raft, topology, gateway: app-stack.ts) +
// control API with dashboard and metrics, all rooted in one data dir.
import { LevelDatastore } from 'datastore-level'
import { loadOrCreateKey } from '../wire/keys.js'
import { createMesh, type Mesh } from '../mesh/mesh.js'
import { decodeInvite, type Invite } from '../mesh/invite.js'
import { generateMeshKey, meshNameProblem } from '../mesh/mesh-config.js'
import { nodeNameProblem, resourcesProblem, type Resources } from '../mesh/capacity.js'
import { createApiServer, type ApiServer } from '../api/server.js'
import type { NodeControl, PeerEntry, PeerPath } from '../api/types.js'
import { createLogger } from '../util/logger.js'
import { registerDashboard } from '../dashboard/index.js'
import { createStemMetrics, libp2pMetrics, registerMetricsRoute } from '../metrics/index.js'
import { createNodeFeed, feedNodeMetrics, type NodeFeed } from './observability.js'
import { appStreamPartitions, feedStreamMetrics, type InfoAsk } from './stream-lag.js'
import { createAppStack, type AppStack } from './app-stack.js'
import { registerAppRoutes } from './app-routes.js'
import { watchCellConditions } from './cell-conditions.js'
import { trackFreeCapacity } from './free-capacity.js'
import { createNodeLogs, type NodeLogs } from './node-logs.js'
import { createFrameSigner } from '../wire/frame.js'
import {
  checkDataFormat, dataFiles, loadOrCreateToken, prepareDataDir, readApiInfo, readContribution, readMeshConfig, removeApiInfo,
  writeApiInfo, writeContribution, writeMeshConfig, type StoredMesh
} from './data-dir.js'

export interface StemNodeOptions {
  dataDir: string
  /** listen multiaddrs (default /ip4/0.0.0.0/tcp/4017) */
  listen?: string[]
  bootstrap?: string[]
  /** an invite token (string) or a decoded invite */
  invite?: string | Invite
  /** control API HOST:PORT (default 127.0.0.1:7070; port 0 picks one) */
  api?: string
  /** HTTP gateway HOST:PORT (port 0 picks one); no gateway without it */
  gateway?: string
  cpu?: number
  memory?: number
  cells?: number
  /** mesh name when creating a new mesh (default "home") */
  mesh?: string
  /** a name people read for this node (`--name`, e.g. "node-1"), advertised to its peers */
  name?: string
  /** capacity heartbeat interval, ms (default 2000) */
  capacityInterval?: number
  /** ms a graceful stop may spend handing leaderships and instances to other nodes (default 10 s) */
  leaveTimeout?: number
  /** ask the home router for a port mapping (UPnP IGD / NAT-PMP); off by default */
  upnp?: boolean
}

export interface StemNode {
  readonly dataDir: string
  peerId: () => string
  mesh: () => Mesh
  apiUrl: () => string
  /** the app layers, once started */
  apps: () => AppStack
  /** the gateway's base URL, '' without a gateway */
  gatewayUrl: () => string
  start: () => Promise<void>
  /** leaves the mesh gracefully (hands leaderships and instances to other nodes first) and releases the data dir */
  stop: () => Promise<void>
}

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4017'
export const DEFAULT_API = '127.0.0.1:7070'
export const DEFAULT_CONTRIBUTION: Resources = { cpu: 1, memory: 2 ** 30, cells: 20 }

export function parseHostPort (text: string, what: string): { host: string, port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text)
  const port = m != null ? Number(m[2]) : NaN
  if (m == null || port > 65535) throw new Error(`invalid ${what} "${text}": expected HOST:PORT, e.g. 127.0.0.1:7070`)
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function createStemNode (options: StemNodeOptions): StemNode {
  const log = createLogger('node')
  const dir = options.dataDir
  const files = dataFiles(dir)
  let mesh: Mesh | undefined
  let api: ApiServer | undefined
  let datastore: LevelDatastore | undefined
  /** waiting to log "joined mesh" until a bootstrap peer is reached */
  let joining: AbortController | undefined
  let stack: AppStack | undefined
  let feed: NodeFeed | undefined
  let stopFreeCapacity: (() => void) | undefined
  let cellLogs: NodeLogs | undefined

  /** the mesh this node belongs to: from the invite, the data dir, or a new one */
  const resolveMesh = async (invite: Invite | undefined): Promise<StoredMesh> => {
    const stored = await readMeshConfig(dir)
    const extra = options.bootstrap ?? []
    if (invite != null) {
      const same = stored != null && stored.name === invite.mesh && Buffer.compare(stored.key, invite.key) === 0
      if (stored != null && !same) log.info(`joining mesh "${invite.mesh}" instead of "${stored.name}" that ${dir} belonged to`)
      const bootstrap = [...new Set([...invite.bootstrap.map(a => a.toString()), ...(same ? stored.bootstrap : [])])]
      const config = { name: invite.mesh, key: invite.key, bootstrap }
      await writeMeshConfig(dir, config)
      return { ...config, bootstrap: [...new Set([...bootstrap, ...extra])] }
    }
    if (stored != null) {
      if (options.mesh != null && options.mesh !== stored.name) throw new Error(`data dir ${dir} belongs to mesh "${stored.name}", not "${options.mesh}" (use another --data for another mesh)`)
      return { ...stored, bootstrap: [...new Set([...stored.bootstrap, ...extra])] }
    }
    const name = options.mesh ?? 'home'
    const problem = meshNameProblem(name)
    if (problem != null) throw new Error(problem)
    const config = { name, key: generateMeshKey(), bootstrap: [] }
    await writeMeshConfig(dir, config)
    log.info(`created mesh "${name}"`)
    return { ...config, bootstrap: extra }
  }

  const resolveContribution = async (): Promise<Resources> => {
    const stored = await readContribution(dir)
    const r = {
      cpu: options.cpu ?? stored?.cpu ?? DEFAULT_CONTRIBUTION.cpu,
      memory: options.memory ?? stored?.memory ?? DEFAULT_CONTRIBUTION.memory,
      cells: options.cells ?? stored?.cells ?? DEFAULT_CONTRIBUTION.cells
    }
    const problem = resourcesProblem(r)
    if (problem != null) throw new Error(problem)
    // flags of start/join are remembered like `stem contribute`'s (README: across restarts)
    if (options.cpu !== undefined || options.memory !== undefined || options.cells !== undefined) await writeContribution(dir, r)
    return r
  }

  const entry = (id: string, addrs: string[], capacity: Resources, free: Resources, lastSeen: number, connected: boolean, name: string | undefined, path?: PeerPath): PeerEntry =>
    ({ id, addrs, capacity, free, lastSeen, connected, ...(name !== undefined ? { name } : {}), ...(path !== undefined ? { path } : {}) })

  const control = (m: Mesh, s: AppStack): NodeControl => ({
    status: () => {
      const local = s.runtime.cells().filter(c => c.status === 'transformed')
      return {
        id: m.peerId,
        mesh: m.config.name,
        addrs: m.addresses(),
        capacity: m.capacity.contributed(),
        free: m.capacity.free(),
        cells: local.length,
        apps: [...new Set([...s.topology.hostedApps(), ...local.map(c => c.app)])].sort(),
        connections: [...m.connectedPeers()],
        ...(options.name !== undefined ? { name: options.name } : {})
      }
    },
    peers: () => {
      const connected = m.connectedPeers()
      return {
        self: entry(m.peerId, m.addresses(), m.capacity.contributed(), m.capacity.free(), Date.now(), false, options.name),
        peers: m.capacity.view.list().map(p => entry(p.id, p.addrs, p.capacity, p.free, p.lastSeen, connected.has(p.id), p.name, m.peerPath(p.id)))
      }
    },
    invite: () => ({ token: m.invite() }),
    contribute: async change => {
      const capacity = m.capacity.setContributed(change)
      await writeContribution(dir, capacity)
      log.info(`contributing cpu ${capacity.cpu}, memory ${capacity.memory} bytes, cells ${capacity.cells}`)
      return { capacity, free: m.capacity.free() }
    }
  })

  const cleanup = async (): Promise<void> => {
    joining?.abort()
    feed?.stop()
    stopFreeCapacity?.()
    stopFreeCapacity = undefined
    await api?.stop().catch(() => {})
    await stack?.stop().catch(() => {})
    await cellLogs?.stop().catch(() => {})
    await mesh?.stop().catch(() => {})
    await datastore?.close().catch(() => {})
    api = undefined
    stack = undefined
    cellLogs = undefined
    feed = undefined
    mesh = undefined
    datastore = undefined
  }

  return {
    dataDir: dir,
    peerId: () => { if (mesh == null) throw new Error('node not started'); return mesh.peerId },
    mesh: () => { if (mesh == null) throw new Error('node not started'); return mesh },
    apiUrl: () => api?.url() ?? '',
    apps: () => { if (stack == null) throw new Error('node not started'); return stack },
    gatewayUrl: () => stack?.gateway?.address() ?? '',
    async start () {
      // decode the invite before touching the disk: a bad token writes nothing
      const invite = typeof options.invite === 'string' ? decodeInvite(options.invite) : options.invite
      const apiAddress = parseHostPort(options.api ?? DEFAULT_API, '--api address')
      const nameProblem = options.name !== undefined ? nodeNameProblem(options.name) : undefined
      if (nameProblem !== undefined) throw new Error(`--name: ${nameProblem}`)
      const gatewayAddress = options.gateway != null ? parseHostPort(options.gateway, '--gateway address') : undefined
      await prepareDataDir(dir)
      for (const line of await checkDataFormat(dir)) log.warn(line)
      const running = await readApiInfo(dir)
      if (running != null && running.pid !== process.pid && processAlive(running.pid)) {
        throw new Error(`data dir ${dir} is in use by another running stem node (pid ${running.pid}, API ${running.url})`)
      }
      const privateKey = await loadOrCreateKey(files.identity)
      const meshConfig = await resolveMesh(invite)
      const contributed = await resolveContribution()
      const token = await loadOrCreateToken(dir)
      try {
        datastore = new LevelDatastore(files.peers)
        await datastore.open()
      } catch (err) {
        datastore = undefined
        throw new Error(`cannot open the peer store in ${files.peers}: ${(err as Error).message} (is another stem node using this data dir?)`)
      }
      const listen = options.listen ?? [DEFAULT_LISTEN]
      // one registry per node: Stem's families, process metrics and libp2p's own (GET /metrics)
      const metrics = createStemMetrics()
      try {
        mesh = await createMesh({
          metrics: libp2pMetrics(metrics),
          privateKey,
          mesh: meshConfig,
          listen,
          bootstrap: meshConfig.bootstrap,
          datastore,
          contributed,
          name: options.name,
          capacityInterval: options.capacityInterval,
          upnp: options.upnp,
          onUpgrade: (result, reason) => { metrics.webrtcUpgrades.inc({ result, reason: reason ?? '' }) }
        })
        try {
          await mesh.start()
        } catch (err) {
          const message = (err as Error).message
          throw new Error(`cannot listen on ${listen.join(', ')}: ${/EADDRINUSE|address already in use/i.test(message) ? 'address already in use (choose another with --listen)' : message}`)
        }
        stack = createAppStack(mesh, {
          dataDir: dir,
          privateKey,
          gateway: gatewayAddress,
          onGatewayResponse: (app, status) => { metrics.gatewayRequests.inc({ app: app === '' ? '-' : app, status: String(status) }) }
        })
        cellLogs = createNodeLogs(mesh, stack.runtime, { dataDir: dir, signer: createFrameSigner(privateKey) })
        await cellLogs.start()
        await stack.start()
        api = createApiServer(control(mesh, stack), { ...apiAddress, token, tokenPath: files.token })
        const conditions = watchCellConditions(mesh, stack.runtime, log)
        stopFreeCapacity = trackFreeCapacity(mesh, stack.runtime, stack.clones)
        registerAppRoutes(api.app, stack.topology, stack.messaging, conditions.overlay)
        cellLogs.registerRoutes(api.app)
        feed = createNodeFeed(mesh, stack, conditions)
        const streamStack = stack
        const askInfo: InfoAsk = async (address, method, args, options) => await streamStack.messaging.ask(address, method, args, options)
        registerDashboard(api.app, {
          source: feed,
          logs: cellLogs.recent,
          streams: async app => await appStreamPartitions(app, streamStack.topology.table.get(app)?.cells.map(c => c.name) ?? [], askInfo)
        })
        feedNodeMetrics(metrics, mesh, stack)
        feedStreamMetrics(metrics, () => streamStack.pump.partitions(), askInfo)
        registerMetricsRoute(api.app, metrics)
        const url = await api.start()
        await writeApiInfo(dir, { url, pid: process.pid })
        // a node joining through bootstrap addresses has joined only once it reaches one
        const joined = `joined mesh "${meshConfig.name}" as ${mesh.peerId}${options.name !== undefined ? ` (${options.name})` : ''}`
        if (meshConfig.bootstrap.length === 0 || mesh.connectedPeers().size > 0) {
          log.info(joined)
        } else {
          log.info(`started as ${mesh.peerId}; joining mesh "${meshConfig.name}" through ${meshConfig.bootstrap.length} bootstrap address(es)…`)
          joining = new AbortController()
          mesh.connected(joining.signal).then(() => { log.info(joined) }, () => {})
        }
      } catch (err) {
        await cleanup()
        throw err
      }
    },
    async stop () {
      if (stack !== undefined) {
        const started = Date.now()
        try {
          const outcome = await stack.leave(AbortSignal.timeout(options.leaveTimeout ?? 10_000))
          const left = outcome.stillHere.length > 0 ? `, ${outcome.stillHere.length} instance(s) left to failover` : ''
          log.info(`hand-over took ${Date.now() - started} ms: ${Object.keys(outcome.handedOver).length} leadership(s) handed over${left}`)
        } catch (err) {
          log.warn(`graceful hand-over failed: ${(err as Error).message}`)
        }
      }
      await removeApiInfo(dir).catch(() => {})
      await cleanup()
    }
  }
}
