// The narrow ports through which the topology uses the rest of a node: exactly the calls it
// makes of the Raft host, the cell runtime, messaging, the bundle exchange, the capacity
// view and the clock. node/ hands it the real parts (which satisfy these as they are); a
// deterministic simulation can hand it stand-ins, so the same control-plane code runs in both.
import type { ConfChange, NodeId } from '../raft/types.js'
import type { GroupId, GroupInit, GroupStatus } from '../raft/multi/types.js'
import type { CellInfo, CellRuntime } from '../cells/runtime.js'
import type { CellBundle } from '../cells/bundle.js'
import type { MessageOptions, RemoteTransformRequest } from '../messaging/cell-messaging.js'
import type { FetchOptions } from '../messaging/code-exchange.js'
import type { NodeCapacity, PeerId } from './types.js'

/** the node's multi-group Raft host (src/raft/multi/raft-host.ts) */
export interface RaftPort {
  addGroup: (id: GroupId, init: GroupInit) => void
  removeGroup: (id: GroupId) => Promise<void>
  hasGroup: (id: GroupId) => boolean
  status: (id: GroupId) => GroupStatus
  /** this node leads `id` and a quorum confirmed it less than an election timeout ago, on the clock: it may act as leader */
  leaseHolds: (id: GroupId) => boolean
  /** leader: asks a quorum to confirm this node's leadership; resolves with leaseHolds after it */
  renewLease: (id: GroupId) => Promise<boolean>
  propose: (id: GroupId, data: Uint8Array) => void
  proposeConfChange: (id: GroupId, cc: ConfChange) => void
  /** saves `data`, the state as of status(id).applied, as the group's snapshot and drops the log before it but `keepEntries` */
  snapshotAndCompact: (id: GroupId, data: Uint8Array, keepEntries?: number) => Promise<unknown>
  /** hands leadership to `to` (or the best of them); the chosen member, or '' if none */
  transferLeadership: (id: GroupId, to?: NodeId | NodeId[]) => NodeId | ''
}

/** this node's cells (src/cells/runtime.ts), with its `cell:snapshot` and `cell:reverted` events */
export type CellRuntimePort = Pick<CellRuntime, 'cell' | 'cells' | 'bundleOf' | 'prepare' | 'release' | 'transform' | 'restart' | 'revert' | 'addEventListener'>

/** cells on other nodes (src/messaging/cell-messaging.ts) */
export interface MessagingPort {
  transformRemote: (peer: string, request: RemoteTransformRequest, options?: Omit<MessageOptions, 'from'>) => Promise<CellInfo>
}

/** content-addressed bundles (src/messaging/code-exchange.ts) */
export interface BundlePort {
  publish: (bundle: CellBundle | Uint8Array, options?: { signal?: AbortSignal }) => Promise<CellBundle>
  fetch: (hash: string, options?: FetchOptions) => Promise<CellBundle>
}

/** the live nodes of the capacity view, this node included (src/mesh/capacity-view.ts) */
export type CapacityPort = () => NodeCapacity[]

/** whether a peer answers on an open connection now (a failure detector's probes), whatever the capacity view says */
export type AnsweringPort = (peer: PeerId) => boolean

/** whether a peer said it is leaving the mesh (a graceful leave) and has not come back since */
export type LeftPort = (peer: PeerId) => boolean

/** wall-clock time in ms since the epoch */
export interface ClockPort {
  now: () => number
}
