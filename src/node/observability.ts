// What a node shows on its dashboard and exports on /metrics: the mesh view, the apps
// and cells of the app table, this node's cells and raft groups.
import { createDashboardFeed, createRateMeter } from '../dashboard/index.js'
import type { DashboardFeed } from '../dashboard/index.js'
import type { StemMetrics } from '../metrics/index.js'
import type { Mesh } from '../mesh/mesh.js'
import type { AppStack } from './app-stack.js'
import type { CellConditions } from './cell-conditions.js'

/** an app's Raft group id is `<app>~<suffix>` */
const appOf = (group: string): string => group.split('~')[0]

export interface NodeFeed extends DashboardFeed {
  stop: () => void
}

export function createNodeFeed (mesh: Mesh, stack: AppStack, conditions: CellConditions): NodeFeed {
  // messages per second of this node's cells: the runtime's count of delivered messages,
  // sampled; the capacity heartbeats carry them to the other nodes' dashboards, and theirs here
  const rates = createRateMeter()
  const counted = new Map<string, number>()
  const sample = (): void => {
    const load: Record<string, number> = {}
    for (const cell of stack.runtime.cells()) {
      const before = counted.get(cell.address) ?? 0
      if (cell.messages > before) rates.mark(cell.address, cell.messages - before)
      counted.set(cell.address, cell.messages)
      const rate = rates.rate(cell.address)
      if (rate > 0) load[cell.address] = rate
    }
    mesh.capacity.setLoad(load)
  }
  const rateOf = (address: string, node: string): number =>
    node === mesh.peerId ? rates.rate(address) : mesh.capacity.view.get(node)?.load[address] ?? 0
  // sampled as each heartbeat advert goes out, which carries the rates
  const unhook = mesh.capacity.beforeHeartbeat(sample)
  const feed = createDashboardFeed({
    self: () => ({ id: mesh.peerId, mesh: mesh.config.name, addrs: mesh.addresses(), ...(mesh.capacity.name !== undefined ? { name: mesh.capacity.name } : {}) }),
    nodes: () => [
      { id: mesh.peerId, name: mesh.capacity.name, addrs: mesh.addresses(), capacity: mesh.capacity.contributed(), free: mesh.capacity.free(), lastSeen: Date.now(), self: true, status: 'alive' as const },
      ...mesh.capacity.view.list().map(p => {
        const path = mesh.peerPath(p.id)
        return { id: p.id, name: p.name, addrs: p.addrs, capacity: p.capacity, free: p.free, lastSeen: p.lastSeen, status: 'alive' as const, ...(path !== undefined ? { path } : {}) }
      })
    ],
    apps: () => stack.topology.table.listApps(),
    cells: () => conditions.overlay(stack.topology.table.listCells()).flatMap(a => a.cells.map(c => ({ ...c, app: a.app, rate: rateOf(c.address, c.node) })))
  })
  stack.topology.addEventListener('app:changed', () => { feed.changed('apps', 'cells') })
  stack.topology.addEventListener('app:removed', evt => { feed.record('info', `app ${evt.detail.app} reverted`); feed.changed('apps', 'cells') })
  stack.raft.addEventListener('leader-change', evt => {
    if (evt.detail.leader !== '') feed.record('leader', `app ${appOf(evt.detail.group)}: leader ${evt.detail.leader.slice(-8)} in term ${evt.detail.term}`)
  })
  stack.runtime.addEventListener('cell:failed', evt => { feed.record('cell-failed', `cell ${evt.detail.address} failed: ${evt.detail.reason ?? 'see the node log'}`); feed.changed('cells') })
  // another node's failed or recovered instance arrives with its capacity advert
  mesh.capacity.view.addEventListener('peer:updated', () => { feed.changed('cells') })
  recordMeshEvents(mesh, stack, feed)
  return { ...feed, stop: unhook }
}

/** joins and losses of nodes, and instances that the leader moved off a lost node (failovers) */
function recordMeshEvents (mesh: Mesh, stack: AppStack, feed: DashboardFeed): void {
  const lost = new Set<string>()
  const placed = new Map<string, string>()
  mesh.capacity.view.addEventListener('peer:seen', evt => {
    lost.delete(evt.detail.id)
    feed.record('peer-joined', `node ${evt.detail.id} joined`)
    feed.changed('nodes')
  })
  mesh.capacity.view.addEventListener('peer:lost', evt => {
    lost.add(evt.detail.id)
    feed.record('peer-lost', `node ${evt.detail.id} ${evt.detail.reason === 'left' ? 'left' : 'lost (missed heartbeats)'}`)
    feed.changed('nodes')
  })
  const states = new Map<string, string>()
  stack.topology.addEventListener('app:changed', () => {
    for (const cell of stack.topology.table.listCells().flatMap(a => a.cells)) {
      // recovery (README "Durability"): an instance waiting for its copies, or without any
      if (states.get(cell.address) !== cell.state) {
        if (cell.state === 'lost') feed.record('cell-lost', `${cell.address} is lost: no node that answers holds its newest copy; it is not served until one comes back, or until its owner runs stem restart --accept-loss`)
        if (cell.state === 'recovering') feed.record('info', `${cell.address} is recovering: its leader waits for the nodes that may hold its newest copy`)
        states.set(cell.address, cell.state)
      }
      if (cell.state !== 'transformed') continue
      const before = placed.get(cell.address)
      // the leader may move it before this node's capacity view expires the old node: a dropped connection counts too
      const gone = before !== undefined && before !== mesh.peerId && (lost.has(before) || !mesh.connectedPeers().has(before))
      if (before !== undefined && before !== cell.node && gone) feed.record('failover', `${cell.address} moved from lost node ${before} to ${cell.node}`)
      placed.set(cell.address, cell.node)
    }
  })
}

/**
 * Feeds a node's metrics from its live parts: state (capacity, cells, mailboxes, raft
 * groups) and the components' own counters (messages, rejected frames) are read at each
 * scrape; leader changes and ask durations are events. Gateway requests are counted by
 * the gateway's onResponse hook (see stem-node.ts), libp2p's metrics by libp2p itself.
 */
export function feedNodeMetrics (metrics: StemMetrics, mesh: Mesh, stack: AppStack): void {
  metrics.addSource(() => {
    const contributed = mesh.capacity.contributed()
    const free = mesh.capacity.free()
    for (const resource of ['cpu', 'memory', 'cells'] as const) {
      metrics.capacityContributed.set({ resource }, contributed[resource])
      metrics.capacityFree.set({ resource }, free[resource])
    }
    metrics.cellStates.reset()
    metrics.cellMessages.reset()
    metrics.mailboxDepth.reset()
    for (const cell of stack.runtime.cells()) {
      metrics.cellStates.inc({ state: cell.status })
      const labels = { app: cell.app, cell: cell.address.slice(cell.app.length + 1) }
      metrics.cellMessages.inc(labels, cell.messages)
      if (cell.status === 'transformed') metrics.mailboxDepth.set(labels, cell.inflight)
    }
    metrics.raftTerm.reset()
    metrics.raftCommitIndex.reset()
    for (const group of stack.raft.groupIds()) {
      const status = stack.raft.status(group)
      metrics.raftTerm.set({ app: appOf(group) }, status.term)
      metrics.raftCommitIndex.set({ app: appOf(group) }, status.commit)
    }
    // the components count; the counters mirror their totals
    const counts = stack.messaging.counts()
    metrics.messages.reset()
    for (const direction of ['in', 'out'] as const) {
      for (const [kind, n] of Object.entries(counts.messages[direction])) metrics.messages.inc({ direction, kind }, n)
    }
    const rejected: Record<string, number> = {}
    const add = (counts: Partial<Record<string, number>>): void => {
      for (const [reason, n] of Object.entries(counts)) if (n !== undefined && n > 0) rejected[reason] = (rejected[reason] ?? 0) + n
    }
    add(counts.rejected)
    add(stack.bundles.counts().rejected)
    add(stack.raftTransport.verifier.counts())
    add(mesh.capacity.rejections())
    add(stack.clones.rejections())
    add(stack.topology.rejections())
    metrics.rejectedFrames.reset()
    for (const [reason, n] of Object.entries(rejected)) metrics.rejectedFrames.inc({ reason }, n)
  })
  stack.raft.addEventListener('leader-change', evt => { metrics.raftLeaderChanges.inc({ app: appOf(evt.detail.group) }) })
  stack.messaging.addEventListener('ask:done', evt => { metrics.askLatency.observe({ scope: evt.detail.scope }, evt.detail.seconds) })
}
