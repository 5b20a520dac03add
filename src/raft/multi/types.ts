// The public shapes of the multi-group raft host: what a group needs (storage, callbacks),
// what the host reports (status, stats, events) and how it is configured.
import type { ConfState, Entry, HardState, LogStorage, Message, NodeId, Snapshot, SoftState } from '../types.js'
import type { RaftConfig } from '../core/index.js'
import type { RaftTransport } from '../transport/types.js'
import type { GroupId } from './raft-batch.js'

export type { GroupId }

/** A group's durable log, as the host persists Readys into it (DiskLogStorage). */
export interface GroupStorage extends LogStorage {
  append: (entries: Entry[]) => void
  setHardState: (hs: HardState) => void
  setConfState: (conf: ConfState) => void
  applySnapshot: (snap: Snapshot) => Promise<void>
  createSnapshot: (index: number, conf: ConfState, data: Uint8Array) => Promise<Snapshot>
  compact: (index: number) => void
  sync: () => Promise<void>
}

/** Raft timing and flow-control settings shared by all groups of a host (see RaftConfig). */
export type GroupRaftOptions = Pick<RaftConfig, 'electionTick' | 'heartbeatTick' | 'preVote' | 'checkQuorum' | 'maxSizePerMsg' | 'maxInflightMsgs' | 'maxCommittedSizePerReady'>

/**
 * Default timing: 25 ms ticks, heartbeats every 50 ms, elections after 250–500 ms of
 * silence (randomized), pre-vote and check-quorum on. A dead leader is replaced in about
 * 350 ms (bench raft-failover); etcd's defaults (100 ms heartbeat, 1 s election) are
 * tuned for WAN links — ours suit a mesh where idle groups cost nothing (quiescence).
 */
export const DEFAULT_TICK_MS = 25
export const DEFAULT_GROUP_RAFT_OPTIONS: GroupRaftOptions = { electionTick: 10, heartbeatTick: 2 }
/** beacon interval for a peer an outside detector covers (PeerWatch): 16 times fewer signed beacons than the default half election timeout */
export const DEFAULT_COVERED_LIVENESS_INTERVAL_MS = 2000

export interface GroupInit {
  storage: GroupStorage
  /**
   * founding members of a brand-new group (every founder passes the same list in the same
   * order); ignored when the storage already holds the group. A group added without
   * members and without stored state accepts its first messages from any peer: it is a
   * new member waiting for the leader to replicate the log to it.
   */
  bootstrap?: NodeId[]
  /** index the state machine has already applied (restart) */
  applied?: number
  /** committed entries, in order; conf changes are applied by the host before this sees them */
  apply?: (entries: Entry[]) => void | Promise<void>
  /** a snapshot to restore the state machine from (follower catching up) */
  applySnapshot?: (snap: Snapshot) => void | Promise<void>
  /**
   * this member's log was lost (damaged and set aside): on an empty storage, rejoin the
   * group through these members (the ones it had), as an empty member that neither votes
   * nor campaigns until the leader has brought it up to date
   */
  rejoin?: NodeId[]
}

export interface GroupStatus {
  group: GroupId
  leader: NodeId | ''
  role: SoftState['role']
  term: number
  commit: number
  applied: number
  members: NodeId[]
  /** not ticking: idle, with everything replicated */
  quiesced: boolean
  /** rejoining after losing its log: not voting until caught up (GroupInit.rejoin) */
  rejoining: boolean
}

export interface RaftHostStats {
  framesSent: number
  framesReceived: number
  bytesSent: number
  bytesReceived: number
  messagesSent: number
  messagesReceived: number
  /** heartbeats and heartbeat responses that travelled in coalesced form */
  heartbeatsCoalesced: number
  /** sends the transport dropped */
  sendsDropped: number
  /** batches that failed to decode */
  malformedBatches: number
  /** messages that failed checks (malformed, from a non-member, refused by the core) */
  rejectedMessages: number
  /** messages for groups this node does not host */
  unknownGroupMessages: number
  readyRounds: number
  readiesProcessed: number
  /** groups put to rest by their leader here, or on a leader's word */
  quiesces: number
  /** quiet groups woken (activity, or their leader fell silent) */
  wakes: number
  /** empty batches sent to show this node is alive */
  livenessBeacons: number
  /** tick timer firings (one per tick while a group ticks; fewer while every group is quiet) */
  ticks: number
  /** pieces of snapshots too large for one frame, sent and received */
  snapshotPiecesSent: number
  snapshotPiecesReceived: number
  /** snapshots put together from their pieces */
  snapshotsReassembled: number
}

export interface RaftHostEvents {
  /** a group's leader or role changed */
  'leader-change': CustomEvent<GroupStatus>
  /** a group failed (its storage could not be written, or its state machine could not apply an entry) and was removed */
  'group-error': CustomEvent<{ group: GroupId, error: Error }>
  /** a group that rejoined with a lost log caught up with its leader and votes again */
  'group-rejoined': CustomEvent<GroupStatus>
  /** a message was rejected (reason in detail) */
  'reject': CustomEvent<{ group: GroupId, from: NodeId, reason: string }>
}

export interface TickClock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

/**
 * An outside failure detector's coverage (the node's: pings over the mesh's connections).
 * While it covers a peer, the host beacons that peer rarely and leaves judging it to the
 * detector, whose verdicts its owner passes on (RaftHost.peerDown, RaftHost.peerUp).
 */
export interface PeerWatch {
  /** the detector watches `peer` now, and will report it down if it stops answering */
  covers: (peer: NodeId) => boolean
}

export interface RaftHostComponents {
  transport: RaftTransport
  clock?: TickClock
  peerWatch?: PeerWatch
}

export interface RaftHostInit {
  self: NodeId
  /** ms per raft tick (default DEFAULT_TICK_MS) */
  tickMs?: number
  /** raft settings for every group, over DEFAULT_GROUP_RAFT_OPTIONS (then the core's defaults) */
  raft?: GroupRaftOptions
  /** idle ticks before a leader quiesces its group (default electionTick; 0 never quiesces) */
  quiesceAfterTicks?: number
  /** send a peer a liveness beacon after this long without any frame to it (default half an election timeout) */
  livenessIntervalMs?: number
  /** a peer silent this long is presumed down: wake the quiet groups it belongs to (default two election timeouts) */
  livenessTimeoutMs?: number
  /** the beacon interval for a peer the PeerWatch covers (default 2000; presumed down by silence after four of them) */
  coveredLivenessIntervalMs?: number
  /** start a new batch (frame) for a peer once one holds about this many bytes (default 4 MiB, at most half the transport's payload limit) */
  maxBatchBytes?: number
  /** a snapshot larger than this travels in pieces of this size (default 1 MiB, at most half a batch) */
  snapshotChunkBytes?: number
  /** largest snapshot accepted in pieces, and most bytes of partial snapshots held at once (default 256 MiB) */
  maxSnapshotBytes?: number
  /** a message arrived for a group this node does not host (yet): the topology layer may create it */
  onUnknownGroup?: (group: GroupId, from: NodeId, message: Message) => void
  /**
   * whether a sender this node's log does not count among the group's members is one all
   * the same, as the layer above knows (the app's signed announcement lists it). A member
   * removed while away and added back holds the membership of its removal until it catches
   * up: it refused the leader elected since, never caught up, and the group had no quorum
   * when another member went down (chaos seed 7: 9 s without a leader).
   */
  admits?: (group: GroupId, from: NodeId) => boolean
}
