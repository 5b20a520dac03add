// What a node shows on its dashboard and exports on /metrics: the mesh view, the apps
// and cells of the app table, this node's cells and raft groups.
import { createDashboardFeed, createRateMeter } from '../dashboard/index.js'
import type { DashboardFeed } from '../dashboard/index.js'
import { createStemMetrics } from '../metrics/index.js'
import type { StemMetrics } from '../metrics/index.js'
import type { Mesh } from '../mesh/mesh.js'
import type { AppStack } from './app-stack.js'

export function createNodeFeed (mesh: Mesh, stack: AppStack): DashboardFeed {
  // state changes reported by this node's cells: their rate of handled messages
  const rates = createRateMeter()
  stack.runtime.addEventListener('cell:snapshot', evt => { rates.mark(evt.detail.address) })
  const feed = createDashboardFeed({
    self: () => ({ id: mesh.peerId, mesh: mesh.config.name, addrs: mesh.addresses() }),
    nodes: () => [
      { id: mesh.peerId, addrs: mesh.addresses(), capacity: mesh.capacity.contributed(), free: mesh.capacity.free(), lastSeen: Date.now(), self: true, status: 'alive' as const },
      ...mesh.capacity.view.list().map(p => ({ id: p.id, addrs: p.addrs, capacity: p.capacity, free: p.free, lastSeen: p.lastSeen, status: 'alive' as const }))
    ],
    apps: () => stack.topology.table.listApps(),
    cells: () => stack.topology.table.listCells().flatMap(a => a.cells.map(c => ({ ...c, app: a.app, rate: rates.rate(c.address) })))
  })
  stack.topology.addEventListener('app:changed', () => { feed.changed('apps', 'cells') })
  stack.topology.addEventListener('app:removed', evt => { feed.record('info', `app ${evt.detail.app} reverted`); feed.changed('apps', 'cells') })
  stack.raft.addEventListener('leader-change', evt => {
    if (evt.detail.leader !== '') feed.record('leader', `app ${evt.detail.group.split('~')[0]}: leader ${evt.detail.leader.slice(-8)} in term ${evt.detail.term}`)
  })
  stack.runtime.addEventListener('cell:failed', evt => { feed.record('cell-failed', `cell ${evt.detail.address} failed`) })
  recordMeshEvents(mesh, stack, feed)
  return feed
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
  stack.topology.addEventListener('app:changed', () => {
    for (const cell of stack.topology.table.listCells().flatMap(a => a.cells)) {
      if (cell.state !== 'transformed') continue
      const before = placed.get(cell.address)
      // the leader may move it before this node's capacity view expires the old node: a dropped connection counts too
      const gone = before !== undefined && before !== mesh.peerId && (lost.has(before) || !mesh.connectedPeers().has(before))
      if (before !== undefined && before !== cell.node && gone) feed.record('failover', `${cell.address} moved from lost node ${before} to ${cell.node}`)
      placed.set(cell.address, cell.node)
    }
  })
}

export function createNodeMetrics (mesh: Mesh, stack: AppStack): StemMetrics {
  const metrics = createStemMetrics()
  metrics.addSource(() => {
    const contributed = mesh.capacity.contributed()
    const free = mesh.capacity.free()
    for (const resource of ['cpu', 'memory', 'cells'] as const) {
      metrics.capacityContributed.set({ resource }, contributed[resource])
      metrics.capacityFree.set({ resource }, free[resource])
    }
    metrics.cellStates.reset()
    for (const cell of stack.runtime.cells()) metrics.cellStates.inc({ state: cell.status })
    metrics.raftTerm.reset()
    metrics.raftCommitIndex.reset()
    for (const group of stack.raft.groupIds()) {
      const status = stack.raft.status(group)
      metrics.raftTerm.set({ app: group.split('~')[0] }, status.term)
      metrics.raftCommitIndex.set({ app: group.split('~')[0] }, status.commit)
    }
  })
  stack.raft.addEventListener('leader-change', evt => { metrics.raftLeaderChanges.inc({ app: evt.detail.group.split('~')[0] }) })
  return metrics
}
