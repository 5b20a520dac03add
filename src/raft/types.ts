// Raft data types shared by the pure core (src/raft/core), its storage and its transport.
// Modelled on etcd-io/raft's raftpb. Node ids are strings (libp2p peer ids in production,
// short names in the simulation). Everything here is plain data: no I/O.

export type NodeId = string

export enum EntryType {
  /** an application command (or an empty no-op when data is empty) */
  Normal = 0,
  /** a membership change; data is an encoded ConfChange */
  ConfChange = 1
}

export interface Entry {
  term: number
  index: number
  type: EntryType
  data: Uint8Array
}

/** What must be on stable storage before a vote or an append is acknowledged. */
export interface HardState {
  term: number
  vote: NodeId | ''
  commit: number
}

export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  AddLearner = 2
}

export interface ConfChange {
  type: ConfChangeType
  node: NodeId
}

export interface SnapshotMetadata {
  index: number
  term: number
  conf: ConfState
}

export interface Snapshot {
  metadata: SnapshotMetadata
  data: Uint8Array
}

export enum MessageType {
  Hup = 0, // local: start an election
  Beat = 1, // local: leader sends heartbeats
  Prop = 2, // propose entries
  App = 3, // append entries
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  Snap = 9, // install snapshot
  Heartbeat = 10,
  HeartbeatResp = 11,
  Unreachable = 12, // local: transport reports a peer unreachable
  SnapStatus = 13, // local: transport reports snapshot delivery result
  TransferLeader = 14,
  TimeoutNow = 15,
  ReadIndex = 16,
  ReadIndexResp = 17,
  CheckQuorum = 18 // local
}

export interface Message {
  type: MessageType
  from: NodeId
  to: NodeId
  term: number
  /** App: term of the entry before `entries`; Vote: last log term */
  logTerm: number
  /** App: index of the entry before `entries`; AppResp: last index / rejected index; Vote: last log index */
  index: number
  entries: Entry[]
  commit: number
  snapshot?: Snapshot
  reject: boolean
  /** AppResp on reject: follower's hint (last index it may match) for fast back-off */
  rejectHint: number
  /** ReadIndex / Heartbeat: opaque request context */
  context: Uint8Array
}

/** A linearizable read that may now be served: state applied through `index` is current. */
export interface ReadState {
  index: number
  context: Uint8Array
}

export enum StateRole {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader'
}

export interface SoftState {
  leader: NodeId | ''
  role: StateRole
}

/**
 * What the application must do next, handed out by `ready()`:
 * 1. persist `hardState` (if set), `entries` and `snapshot` (if set) — fsync —
 * 2. only then send `messages`,
 * 3. apply `committedEntries` (and `snapshot`) to the state machine,
 * 4. call `advance()`.
 */
export interface Ready {
  softState?: SoftState
  hardState?: HardState
  entries: Entry[]
  snapshot?: Snapshot
  committedEntries: Entry[]
  messages: Message[]
  readStates: ReadState[]
}

/** Read-only view of the persisted log that the core consults (etcd's Storage interface). */
export interface LogStorage {
  initialState: () => { hardState: HardState, confState: ConfState }
  /** entries in [lo, hi), at most maxBytes (at least one entry); throws CompactedError below firstIndex */
  entries: (lo: number, hi: number, maxBytes?: number) => Entry[]
  term: (index: number) => number
  firstIndex: () => number
  lastIndex: () => number
  snapshot: () => Snapshot
}

export class CompactedError extends Error {
  constructor (index: number) {
    super(`raft log compacted: index ${index} is no longer available`)
    this.name = 'CompactedError'
  }
}
