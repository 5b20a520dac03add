// The dashboard's data contract: what a node shows on its dashboard page. Field names
// mirror the JSON of the CLI listings (SPEC §6: `stem peers`, `stem apps`, `stem cells`),
// so the same data feeds both. Pure types: the browser bundle imports this file too.

export interface Resources {
  /** cores */
  cpu: number
  /** bytes */
  memory: number
  /** cell slots */
  cells: number
}

export interface SelfInfo {
  id: string
  mesh: string
  addrs: string[]
  /** its name (`stem start --name`), if any */
  name?: string
}

/** one node of the capacity view (`stem peers`), this node included */
export interface NodeInfo {
  id: string
  addrs: string[]
  /** what the node contributes */
  capacity: Resources
  /** what is still free of it */
  free: Resources
  /** ms since the epoch of its last advert (for this node: now) */
  lastSeen: number
  /** its name (`stem start --name`), if any */
  name?: string
  /** true for the node serving this dashboard */
  self?: boolean
  /** how the node serving this dashboard reaches it (`stem peers` `path`): TCP, a circuit relay hop through a member, or a hole-punched WebRTC connection; absent for itself and when not connected */
  path?: 'direct' | 'relayed' | 'webrtc'
  /** 'lost' nodes may be kept for a while so the page can show where they were */
  status?: 'alive' | 'lost'
}

/** one app (`stem apps`) */
export interface AppInfo {
  app: string
  /** owner's public key / peer id */
  owner: string
  /** peer id of the Raft leader, '' while there is none */
  leader: string
  term: number
  /** peer ids of the Raft group */
  members: string[]
}

/** one cell instance (`stem cells`, flattened: one entry per `app/cell#i`) */
export interface CellInfo {
  app: string
  /** `app/cell#i` */
  address: string
  /** peer id of the node running it */
  node: string
  /** 'stem' | 'transformed' | 'reverted' | 'failed' (SPEC §4), or a placement state such as 'starting' */
  state: string
  /** peer ids of the nodes holding its warm clones */
  clones: string[]
  /** messages per second handled recently */
  rate: number
  /** why and since when (ms since the epoch) a `failed` instance is not serving */
  reason?: string
  since?: number
}

/**
 * Known kinds (the page colours them): 'peer-joined', 'peer-lost', 'leader', 'failover',
 * 'rollout', 'cell-failed', 'cell-lost', 'info'. Other kinds are shown plainly.
 */
export interface MeshEvent {
  /** ms since the epoch */
  at: number
  kind: string
  /** one line */
  text: string
}

/** one line of a cell's log (GET /dashboard/logs?cell=ADDRESS) */
export interface DashboardLogLine {
  /** ms since the epoch */
  at: number
  /** peer id of the node the cell ran on */
  node: string
  address: string
  /** 'log' | 'error' | 'crashed' | 'restarted' | 'failed' */
  kind: string
  text: string
}

/** one partition of an app's stream (GET /dashboard/streams?app=APP): what `stem stream` shows */
export interface DashboardStreamPartition {
  /** the stream's name; its dead-letter stream is `<stream>.dead` */
  stream: string
  partition: number
  /** offset of the next record; null when the partition did not answer */
  next: number | null
  /** each consumer group: the last offset it acknowledged and the records after it */
  groups: Array<{ group: string, acked: number, lag: number }>
  /** why the partition could not be read */
  error?: string
}

export interface DashboardSnapshot {
  self: SelfInfo
  nodes: NodeInfo[]
  apps: AppInfo[]
  cells: CellInfo[]
  /** recent events, oldest first */
  events: MeshEvent[]
}

/** the parts of a snapshot that change as a whole */
export type SnapshotPart = 'self' | 'nodes' | 'apps' | 'cells'
export const snapshotParts: readonly SnapshotPart[] = ['self', 'nodes', 'apps', 'cells']

export type DashboardEvent =
  /** state changed: the dashboard reads snapshot() again (only `parts`, if given) */
  | { type: 'changed', parts?: SnapshotPart[] }
  /** something happened: appended to the recent events */
  | { type: 'event', event: MeshEvent }

/** What the node gives the dashboard: a snapshot on demand and change notifications. */
export interface DashboardSource {
  snapshot: () => DashboardSnapshot
  /** returns the unsubscribe function */
  subscribe: (listener: (event: DashboardEvent) => void) => () => void
}

/** Server-sent events on /dashboard/events: `event: <name>` + `data: <JSON>`. */
export interface StreamMessages {
  /** the whole picture: sent first, and again after the page reconnects */
  snapshot: DashboardSnapshot
  /** changed parts replace the page's copy of them */
  patch: Partial<Pick<DashboardSnapshot, SnapshotPart>>
  /** one new event */
  event: MeshEvent
}
