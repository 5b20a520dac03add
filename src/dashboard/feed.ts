// A ready-made DashboardSource for the node: it reads the live parts through the getters
// it is given, keeps a bounded log of recent events, and notifies subscribers. The node
// calls record() on joins, losses, failovers and rollouts, and changed() when state moves.
import type { AppInfo, CellInfo, DashboardEvent, DashboardSnapshot, DashboardSource, MeshEvent, NodeInfo, SelfInfo, SnapshotPart } from './types.js'

export interface DashboardFeedInit {
  self: () => SelfInfo
  nodes: () => NodeInfo[]
  apps: () => AppInfo[]
  cells: () => CellInfo[]
  /** recent events kept; default 200 */
  maxEvents?: number
  now?: () => number
  /** a listener that throws is reported here and kept subscribed */
  onListenerError?: (err: unknown) => void
}

export interface DashboardFeed extends DashboardSource {
  /** appends one event (text is cut to one line of at most 300 characters) */
  record: (kind: string, text: string) => MeshEvent
  /** tells subscribers that these parts (default: all) changed */
  changed: (...parts: SnapshotPart[]) => void
}

const MAX_TEXT = 300

export function createDashboardFeed (init: DashboardFeedInit): DashboardFeed {
  const maxEvents = init.maxEvents ?? 200
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) throw new Error(`maxEvents must be a whole number ≥ 1, got ${maxEvents}`)
  const now = init.now ?? Date.now
  const events: MeshEvent[] = []
  const listeners = new Set<(event: DashboardEvent) => void>()

  const emit = (event: DashboardEvent): void => {
    for (const listener of [...listeners]) {
      try {
        listener(event)
      } catch (err) {
        init.onListenerError?.(err)
      }
    }
  }

  return {
    snapshot: (): DashboardSnapshot => ({
      self: init.self(),
      nodes: init.nodes(),
      apps: init.apps(),
      cells: init.cells(),
      events: [...events]
    }),
    subscribe: listener => {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    record: (kind, text) => {
      const line = text.replace(/\s+/g, ' ').trim()
      const event: MeshEvent = { at: now(), kind, text: line.length > MAX_TEXT ? line.slice(0, MAX_TEXT - 1) + '…' : line }
      events.push(event)
      if (events.length > maxEvents) events.splice(0, events.length - maxEvents)
      emit({ type: 'event', event })
      return event
    },
    changed: (...parts) => {
      emit(parts.length === 0 ? { type: 'changed' } : { type: 'changed', parts })
    }
  }
}
