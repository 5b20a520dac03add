// The shapes the control API serves and the CLI prints with --json (SPEC §6). Field
// names are a contract: add fields, never rename them.
import type { Resources } from '../mesh/capacity.js'
import type { PeerPath } from '../mesh/peer-path.js'

export type { Resources }
export type { PeerPath } from '../mesh/peer-path.js'

export interface PeerEntry {
  id: string
  addrs: string[]
  capacity: Resources
  free: Resources
  /** ms since the epoch of the peer's last advert */
  lastSeen: number
  /** whether this node has an open direct connection to it (extra field) */
  connected: boolean
  /** the name it was given (`stem start --name`), if any (extra field) */
  name?: string
  /** how this node reaches it: TCP, a circuit relay hop, or a hole-punched WebRTC connection; absent when not connected (and for self) */
  path?: PeerPath
}

export interface PeersResponse {
  /** this node, in the same shape as a peer */
  self: PeerEntry
  peers: PeerEntry[]
}

export interface StatusResponse {
  id: string
  mesh: string
  addrs: string[]
  capacity: Resources
  free: Resources
  cells: number
  apps: string[]
  /** ids of directly connected peers (extra field) */
  connections: string[]
  /** this node's name (`stem start --name`), if any (extra field) */
  name?: string
}

export interface InviteResponse {
  token: string
}

export interface ContributeRequest {
  cpu?: number
  memory?: number
  cells?: number
}

export interface ContributeResponse {
  capacity: Resources
  free: Resources
}

/** What the API server needs from the node: implemented by the composition root. */
export interface NodeControl {
  status: () => StatusResponse
  peers: () => PeersResponse
  invite: () => InviteResponse
  /** throws a one-line error for invalid values */
  contribute: (change: ContributeRequest) => Promise<ContributeResponse>
}
