// The node's app layers, composed: the cell runtime (cell hosts as child processes), the
// bundle store and code exchange, cell messaging (directory = the app table), the raft
// host over /stem/<mesh>/raft/1, warm clones (/stem/<mesh>/clone/2: messaging answers
// only once a clone holds the state), the topology service, and the gateway if asked for.
import { createCellRuntime } from '../cells/index.js'
import type { CellRuntime } from '../cells/index.js'
import { createBundleStore, createBundleExchange, createCellMessaging } from '../messaging/index.js'
import type { BundleExchange, CellMessaging } from '../messaging/index.js'
import { createRaftHost } from '../raft/multi/raft-host.js'
import type { RaftHost } from '../raft/multi/raft-host.js'
import { createLibp2pRaftTransport } from '../raft/transport/libp2p-transport.js'
import type { Libp2pRaftTransport } from '../raft/transport/libp2p-transport.js'
import { createTopologyService } from '../topology/service.js'
import { AppTable } from '../topology/app-table.js'
import { placementRefusal } from '../topology/placement-authority.js'
import { createCloneService } from '../topology/clones.js'
import { CloneStore } from '../topology/clone-store.js'
import type { CloneService } from '../topology/clones.js'
import type { TopologyService } from '../topology/service.js'
import type { LeaveOutcome } from '../topology/graceful-leave.js'
import type { AppAnnouncement } from '../topology/announcement.js'
import type { NodeCapacity } from '../topology/types.js'
import { createGateway } from '../gateway/index.js'
import type { Gateway, GatewayRoute } from '../gateway/index.js'
import { createFrameSigner } from '../wire/frame.js'
import type { PrivateKey } from '../wire/keys.js'
import type { Mesh } from '../mesh/mesh.js'
import { createLogger } from '../util/logger.js'
import { createMessagingBackend } from './gateway-backend.js'
import { createFailureDetector } from './failure-detector.js'
import type { FailureDetector } from './failure-detector.js'
import { createContributionGuard } from './contribution-guard.js'
import { dataFiles } from './data-dir.js'
import { createStreamPump, type StreamPump } from '../topology/streams/stream-pump.js'
import { streamGatewayRoute } from '../topology/streams/stream-routes.js'
import type { PartitionInfoPort } from '../topology/streams/autoscaler.js'
import type { PartitionInfo } from '../cells/streams/partition-code.js'

export interface AppStackInit {
  dataDir: string
  privateKey: PrivateKey
  gateway?: { host: string, port: number }
  /** called once per answered gateway request (metrics): the app ('' if no route matched) and the status code */
  onGatewayResponse?: (app: string, status: number) => void
}

export interface AppStack {
  readonly runtime: CellRuntime
  readonly bundles: BundleExchange
  readonly messaging: CellMessaging
  readonly raft: RaftHost
  readonly raftTransport: Libp2pRaftTransport
  readonly topology: TopologyService
  readonly clones: CloneService
  readonly gateway?: Gateway
  /** delivery of the stream partitions whose primary runs here */
  readonly pump: StreamPump
  start: () => Promise<void>
  /**
   * Graceful leave, before stop: says 'leaving' in a capacity advert (peers stop placing
   * work here), hands leaderships over and waits until this node's instances run
   * elsewhere, up to `signal`.
   */
  leave: (signal: AbortSignal) => Promise<LeaveOutcome>
  stop: () => Promise<void>
}

/** a route's deadline: the cell's CPU limit plus a margin for the mesh round trip */
const ROUTE_MARGIN_MS = 5000

function gatewayRoutes (a: AppAnnouncement): GatewayRoute[] {
  const timeouts = new Map(a.cells.map(c => [c.name, c.timeout]))
  return a.routes.map(r => ({ method: r.method, path: r.path, cell: r.cell, cellMethod: r.handler, ...(r.key != null ? { key: r.key } : {}), timeoutMs: (timeouts.get(r.cell) ?? 1000) + ROUTE_MARGIN_MS, ...streamGatewayRoute(a, r) }))
}

export function createAppStack (mesh: Mesh, init: AppStackInit): AppStack {
  const log = createLogger('node')
  const files = dataFiles(init.dataDir)
  const name = mesh.config.name
  const signer = createFrameSigner(init.privateKey)
  // answers wait until a clone holds the state they produced (SPEC §4)
  let clones: CloneService | undefined
  // the states of this node's primaries are persisted by the clone service (<data>/cells)
  const runtime = createCellRuntime({
    replyGate: async (address, version) => { await clones?.gate(address, version) },
    admit: createContributionGuard(() => mesh.capacity.contributed())
  })
  const store = createBundleStore(files.bundles)
  const bundles = createBundleExchange({ libp2p: mesh.libp2p, store, signer }, { mesh: name })
  // the leaders' announcements: messaging's directory, the clones' view of who is primary
  const table = new AppTable()
  const cloneService = createCloneService({ libp2p: mesh.libp2p, runtime, bundles, signer, table, store: new CloneStore(files.clones), primaries: new CloneStore(files.cells) }, { mesh: name })
  clones = cloneService
  let topology: TopologyService | undefined
  let failures: FailureDetector | undefined
  const messaging = createCellMessaging({ libp2p: mesh.libp2p, runtime, directory: table, signer, bundles, peerDown: peer => failures?.isDown(peer) === true }, {
    mesh: name,
    // only the app's group places its cells, with its owner's code
    // and no step of a placement this node knows to be superseded (a deposed leader's)
    refuseTransform: (peer, request) => {
      const refusal = placementRefusal(table, peer, request.address, request.owner) ?? cloneService.staleStep(request.address, request.epoch)
      // the primary started here runs that placement's epoch (its state is labelled with it)
      if (refusal === undefined && request.epoch !== undefined) cloneService.runsAsPrimary(request.address, request.epoch)
      return refusal
    }
  })
  const transport: Libp2pRaftTransport = createLibp2pRaftTransport({ libp2p: mesh.libp2p, signer }, { mesh: name })
  // the failure detector covers raft's peer liveness: beacons to a covered peer are rare
  const raft = createRaftHost({ transport, peerWatch: { covers: peer => failures?.covers(peer) === true } }, {
    self: mesh.peerId,
    onUnknownGroup: (group, from, message) => { topology?.onUnknownGroup(group, from, message) },
    admits: (group, from) => topology?.admitsToGroup(group, from) === true
  })
  raft.addEventListener('group-error', evt => { log.error(`raft group ${evt.detail.group} stopped on this node: ${evt.detail.error.message}`) })
  raft.addEventListener('group-rejoined', evt => { log.info(`raft group ${evt.detail.group} caught up after its log was lost: this node votes in it again`) })
  // the capacity view's peers, and the members of this node's raft groups whose adverts
  // stopped reaching it: the controller asks whether such a member still answers
  const watched = (): string[] => {
    const ids = new Set(mesh.capacity.view.list().map(p => p.id))
    for (const group of raft.groupIds()) for (const m of raft.status(group).members) if (m !== mesh.peerId) ids.add(m)
    return [...ids]
  }
  failures = createFailureDetector(mesh.libp2p, { mesh: name, members: watched, onDown: peer => { raft.peerDown(peer); messaging.peerJudgedDown(peer); cloneService.peerDown(peer); topology?.peerDown(peer) }, onUp: peer => { raft.peerUp(peer); topology?.forgetPeer(peer) }, onSuspect: peer => { raft.peerSuspect(peer) } })
  const nodes = (): NodeCapacity[] => [
    { id: mesh.peerId, contributed: mesh.capacity.contributed(), alive: true },
    ...mesh.capacity.view.list().map(p => ({ id: p.id, contributed: p.capacity, alive: failures?.isDown(p.id) !== true }))
  ]
  const failed = (address: string, node: string): boolean =>
    node === mesh.peerId ? runtime.cell(address)?.status === 'failed' : mesh.capacity.view.get(node)?.conditions[address] !== undefined
  const partitionInfo: PartitionInfoPort = async (address, options) => await messaging.ask(address, 'info', [], options) as PartitionInfo
  topology = createTopologyService({ self: mesh.peerId, libp2p: mesh.libp2p, raft, runtime, messaging, bundles, clones: cloneService, table, pubsub: mesh.libp2p.services.pubsub, signer, nodes, answering: peer => failures?.covers(peer) === true, left: peer => mesh.capacity.view.hasLeft(peer), failed, partitionInfo }, { mesh: name, groupsDir: files.groups })
  const gateway = init.gateway === undefined ? undefined : createGateway({ backend: createMessagingBackend(messaging, table), onResponse: init.onGatewayResponse }, init.gateway)
  topology.addEventListener('app:changed', evt => { cloneService.onAnnouncement(evt.detail.announcement) })
  raft.addEventListener('leader-change', evt => { if (evt.detail.leader === mesh.peerId) topology?.elected() })
  topology.addEventListener('app:removed', evt => { cloneService.dropApp(evt.detail.app) })
  if (gateway !== undefined) {
    topology.addEventListener('app:changed', evt => {
      try {
        gateway.setRoutes(evt.detail.app, gatewayRoutes(evt.detail.announcement))
      } catch (err) {
        log.warn(`gateway routes of app ${evt.detail.app}: ${(err as Error).message}`)
      }
    })
    topology.addEventListener('app:removed', evt => { gateway.removeApp(evt.detail.app) })
  }
  const service = topology
  // stream partitions whose primary runs here deliver their records to the consumers
  const pump = createStreamPump({
    ask: async (address, method, args, options) => await messaging.ask(address, method, args, options),
    isLocalPrimary: address => runtime.cell(address)?.status === 'transformed',
    announcement: app => table.get(app),
    log: line => { log.debug(line) }
  })
  runtime.addEventListener('cell:snapshot', evt => { pump.onSnapshot(evt.detail.address, evt.detail.state) })
  // A peer that connects again may have restarted blank: the leader starts its copies
  // again (harmless for a copy still running: a hold keeps the held state, a replace keeps
  // the cell's). Not at the disconnect: the next round would then restart the copies on
  // the suspected node and wait for the dial to fail before the verdict moves them.
  mesh.libp2p.addEventListener('peer:connect', evt => {
    const peer = evt.detail.toString()
    raft.peerUp(peer)
    service.forgetPeer(peer)
  })
  mesh.capacity.view.addEventListener('peer:lost', evt => { service.forgetPeer(evt.detail.id) })

  return {
    runtime,
    bundles,
    messaging,
    raft,
    raftTransport: transport,
    topology: service,
    clones: cloneService,
    gateway,
    pump,
    async start () {
      runtime.start()
      await bundles.start()
      await messaging.start()
      await cloneService.start()
      await transport.start()
      raft.start()
      await service.start()
      if (gateway !== undefined) {
        try {
          await gateway.start()
        } catch (err) {
          throw new Error(`cannot start the gateway on ${init.gateway?.host ?? ''}:${init.gateway?.port ?? ''}: ${(err as Error).message}`)
        }
      }
    },
    async leave (signal) {
      await mesh.capacity.announceLeaving()
      return await service.leave(signal)
    },
    async stop () {
      failures?.stop()
      pump.stop()
      await gateway?.stop().catch(() => {})
      await service.stop().catch(() => {})
      await raft.stop().catch(() => {})
      await transport.stop().catch(() => {})
      await cloneService.stop().catch(() => {})
      await messaging.stop().catch(() => {})
      await bundles.stop().catch(() => {})
      await runtime.stop().catch(() => {})
    }
  }
}
