// The page's copy of the node's state, kept current by the event stream of
// /dashboard/events: a `snapshot` replaces it, a `patch` replaces the parts it carries,
// an `event` is appended. Nodes that vanish are kept a while as 'lost' ghosts, so a
// failure stays visible where it happened.
import type { DashboardSnapshot, MeshEvent, NodeInfo, StreamMessages } from '../types.js'

export type Connection = 'connecting' | 'live' | 'reconnecting'

export interface ViewState {
  snap?: DashboardSnapshot
  connection: Connection
  /** nodes no longer reported, with when they vanished */
  ghosts: Map<string, { node: NodeInfo, lostAt: number }>
}

const MAX_EVENTS = 200
const GHOST_MS = 60_000

export function applySnapshot (state: ViewState, snap: DashboardSnapshot, now: number): ViewState {
  return { ...state, snap, ghosts: trackGhosts(state, snap.nodes, now) }
}

export function applyPatch (state: ViewState, patch: StreamMessages['patch'], now: number): ViewState {
  if (state.snap == null) return state
  const snap = { ...state.snap, ...patch }
  return { ...state, snap, ghosts: patch.nodes != null ? trackGhosts(state, patch.nodes, now) : expire(state.ghosts, now) }
}

export function applyEvent (state: ViewState, event: MeshEvent): ViewState {
  if (state.snap == null) return state
  const events = [...state.snap.events, event].slice(-MAX_EVENTS)
  return { ...state, snap: { ...state.snap, events } }
}

/** live nodes first (as reported), then the ghosts */
export function visibleNodes (state: ViewState): NodeInfo[] {
  const nodes = state.snap?.nodes ?? []
  return [...nodes, ...[...state.ghosts.values()].map(g => ({ ...g.node, status: 'lost' as const }))]
}

function trackGhosts (state: ViewState, nodes: NodeInfo[], now: number): Map<string, { node: NodeInfo, lostAt: number }> {
  const present = new Set(nodes.map(n => n.id))
  const ghosts = expire(state.ghosts, now)
  for (const id of present) ghosts.delete(id)
  for (const old of state.snap?.nodes ?? []) {
    if (!present.has(old.id) && !ghosts.has(old.id)) ghosts.set(old.id, { node: old, lostAt: now })
  }
  return ghosts
}

function expire (ghosts: ViewState['ghosts'], now: number): ViewState['ghosts'] {
  const kept = new Map(ghosts)
  for (const [id, ghost] of kept) if (now - ghost.lostAt > GHOST_MS) kept.delete(id)
  return kept
}
