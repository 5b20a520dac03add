// The body of every raft frame between two nodes: all groups' messages from one flush,
// with heartbeats coalesced (CockroachDB-style): a plain heartbeat or heartbeat response
// shrinks to (group, term, commit, context) and the sender/receiver come from the frame.
import * as pb from '../../wire/proto/raft.js'
import { MessageType } from '../types.js'
import type { Message, NodeId } from '../types.js'
import { entryFromProto, entryToProto, snapshotFromProto, snapshotToProto } from '../storage/proto-convert.js'
import type { SnapshotPiece } from './snapshot-chunks.js'

export type GroupId = string

/** Hard limits on a decoded batch, so a hostile frame cannot make us allocate without bound. */
export const BATCH_LIMITS = {
  groups: 100_000,
  heartbeats: 100_000,
  heartbeatResponses: 100_000,
  entriesPerMessage: 100_000,
  messagesPerGroup: 10_000,
  snapshotChunks: 1024
}

const EMPTY = new Uint8Array(0)

type Bytes = Uint8Array<ArrayBuffer>

function isPlainHeartbeat (m: Message): boolean {
  return (m.type === MessageType.Heartbeat || m.type === MessageType.HeartbeatResp) &&
    m.logTerm === 0 && m.index === 0 && m.entries.length === 0 && m.snapshot === undefined &&
    !m.reject && m.rejectHint === 0
}

function messageToProto (m: Message): pb.Message {
  return {
    type: m.type,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToProto),
    commit: m.commit,
    snapshot: m.snapshot === undefined ? undefined : snapshotToProto(m.snapshot),
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context as Bytes
  }
}

function messageFromProto (m: pb.Message, from: NodeId, to: NodeId): Message {
  return {
    type: m.type as MessageType,
    from,
    to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryFromProto),
    commit: m.commit,
    snapshot: m.snapshot === undefined ? undefined : snapshotFromProto(m.snapshot),
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context
  }
}

/** Collects one flush's outgoing messages for one peer. */
export class BatchBuilder {
  private readonly groups = new Map<GroupId, pb.Message[]>()
  private readonly heartbeats: pb.GroupHeartbeat[] = []
  private readonly heartbeatResponses: pb.GroupHeartbeat[] = []
  private readonly chunks: pb.SnapshotChunk[] = []
  /** raft messages added (coalesced or not) */
  messages = 0
  coalesced = 0
  /** rough encoded size so far, to split batches before they pass the frame limit */
  approxBytes = 0
  /** groups whose snapshot travels in this batch (the sender reports delivery to its core) */
  readonly snapshots: GroupId[] = []

  add (group: GroupId, m: Message): void {
    this.messages++
    this.approxBytes += group.length + 32
    if (isPlainHeartbeat(m)) {
      this.coalesced++
      const hb = { group, term: m.term, commit: m.commit, context: m.context as Bytes, quiesce: false }
      if (m.type === MessageType.Heartbeat) this.heartbeats.push(hb)
      else this.heartbeatResponses.push(hb)
      return
    }
    let list = this.groups.get(group)
    if (list === undefined) {
      list = []
      this.groups.set(group, list)
    }
    for (const e of m.entries) this.approxBytes += e.data.length + 24
    if (m.snapshot !== undefined) {
      this.approxBytes += m.snapshot.data.length + 64
      this.snapshots.push(group)
    }
    list.push(messageToProto(m))
  }

  /** A piece of a snapshot too large for one frame; `last`: the snapshot is complete with it (its delivery is reported). */
  addSnapshotPiece (group: GroupId, piece: SnapshotPiece, last: boolean): void {
    this.messages++
    this.approxBytes += group.length + piece.data.length + 128
    this.chunks.push({ group, message: messageToProto(piece.message), offset: piece.offset, total: piece.total, data: piece.data as Bytes })
    if (last) this.snapshots.push(group)
  }

  /** The leader's heartbeat that also tells the follower to stop ticking the group. */
  addQuiesce (group: GroupId, term: number, commit: number): void {
    this.messages++
    this.coalesced++
    this.approxBytes += group.length + 32
    this.heartbeats.push({ group, term, commit, context: EMPTY as Bytes, quiesce: true })
  }

  get empty (): boolean {
    return this.messages === 0
  }

  encode (): Uint8Array {
    return pb.RaftBatch.encode({
      groups: [...this.groups].map(([group, messages]) => ({ group, messages })),
      heartbeats: this.heartbeats,
      heartbeatResponses: this.heartbeatResponses,
      snapshotChunks: this.chunks
    })
  }
}

export interface ReceivedMessage {
  group: GroupId
  message: Message
  /** a heartbeat asking the follower to quiesce the group */
  quiesce: boolean
  /** a piece of a snapshot (`message` is then its Snap message without data) */
  piece?: SnapshotPiece
}

/**
 * Decodes a batch from `from` (the authenticated sender) to `self`; throws a one-line
 * error if it is not a valid RaftBatch. Messages are not yet checked for sense: that is
 * the receiving group's job.
 */
export function decodeBatch (bytes: Uint8Array, from: NodeId, self: NodeId): ReceivedMessage[] {
  let batch: pb.RaftBatch
  try {
    batch = pb.RaftBatch.decode(bytes, {
      limits: {
        groups: BATCH_LIMITS.groups,
        heartbeats: BATCH_LIMITS.heartbeats,
        heartbeatResponses: BATCH_LIMITS.heartbeatResponses,
        groups$: { messages: BATCH_LIMITS.messagesPerGroup, messages$: { entries: BATCH_LIMITS.entriesPerMessage } },
        snapshotChunks: BATCH_LIMITS.snapshotChunks,
        snapshotChunks$: { message: { entries: 0 } }
      }
    })
  } catch (err) {
    throw new Error(`malformed raft batch: ${(err as Error).message}`)
  }
  const out: ReceivedMessage[] = []
  try {
    for (const g of batch.groups) {
      for (const m of g.messages) out.push({ group: g.group, message: messageFromProto(m, from, self), quiesce: false })
    }
    for (const c of batch.snapshotChunks) {
      if (c.message?.snapshot === undefined) throw new Error('snapshot piece without its message')
      const message = messageFromProto(c.message, from, self)
      out.push({ group: c.group, message, quiesce: false, piece: { message, offset: c.offset, total: c.total, data: c.data } })
    }
  } catch (err) {
    throw new Error(`malformed raft batch: ${(err as Error).message}`)
  }
  for (const [list, type] of [[batch.heartbeats, MessageType.Heartbeat], [batch.heartbeatResponses, MessageType.HeartbeatResp]] as const) {
    for (const hb of list) {
      out.push({
        group: hb.group,
        message: { type, from, to: self, term: hb.term, logTerm: 0, index: 0, entries: [], commit: hb.commit, reject: false, rejectHint: 0, context: hb.context.length === 0 ? EMPTY : hb.context },
        quiesce: hb.quiesce && type === MessageType.Heartbeat
      })
    }
  }
  return out
}
