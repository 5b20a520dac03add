// RawNode: the application's handle on the pure Raft core (etcd's RawNode). The
// application calls tick() on a timer, step() for each message from the network, and
// drains ready()/advance() — persisting, sending and applying in that order.
import { ConfChangeType, EntryType, MessageType, StateRole } from '../types.js'
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, SoftState } from '../types.js'
import { encodeConfChange } from './conf-change-codec.js'
import { checkMessage, makeMessage } from './messages.js'
import { entrySize } from './entry-size.js'
import type { ProgressState } from './progress.js'
import { ProposalDroppedError, Raft } from './raft.js'
import type { RaftConfig } from './raft.js'

export interface RawNodeConfig extends RaftConfig {
  /**
   * Members of a brand-new group. Used only when the storage is empty: the node then
   * writes one AddNode entry per peer at term 1 (every founding member must be given the
   * same list in the same order). Ignored on restart.
   */
  peers?: NodeId[]
}

export class InvalidMessageError extends Error {
  constructor (m: Message, reason: string) {
    super(`raft: dropped ${typeof MessageType[m?.type] === 'string' ? MessageType[m.type] : 'message'} from ${String(m?.from)}: ${reason}`)
    this.name = 'InvalidMessageError'
  }
}

export interface ProgressStatus {
  match: number
  next: number
  state: ProgressState
  recentActive: boolean
}

export interface Status {
  id: NodeId
  term: number
  vote: NodeId | ''
  commit: number
  applied: number
  lastIndex: number
  firstIndex: number
  lead: NodeId | ''
  role: StateRole
  voters: NodeId[]
  learners: NodeId[]
  leadTransferee: NodeId | ''
  /** the leader's view of every member */
  progress?: Record<NodeId, ProgressStatus>
}

export class RawNode {
  private readonly raft: Raft
  private prevSoft: SoftState
  private prevHard: HardState
  private pending: Ready | undefined

  constructor (config: RawNodeConfig) {
    this.raft = new Raft(config)
    const r = this.raft
    if (config.peers !== undefined && config.peers.length > 0 && r.raftLog.lastIndex() === 0 && r.prs.voters.size === 0 && r.prs.learners.size === 0) {
      this.bootstrap(config.peers)
    }
    this.prevSoft = this.softState()
    this.prevHard = config.storage.initialState().hardState
  }

  private bootstrap (peers: NodeId[]): void {
    const r = this.raft
    if (new Set(peers).size !== peers.length) throw new Error('raft bootstrap: duplicate peer ids')
    r.becomeFollower(1, '')
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, node: p })
    }))
    r.raftLog.append(ents)
    r.raftLog.committed = ents.length
    for (const p of peers) r.applyConfChange({ type: ConfChangeType.AddNode, node: p })
  }

  get id (): NodeId {
    return this.raft.id
  }

  tick (): void {
    this.raft.tick()
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign (): void {
    this.raft.campaignNow()
  }

  /** Forgets a leader the host knows to be dead and whose lease has run out (Raft.forgetLeader). */
  forgetLeader (campaignInTicks?: number): void {
    this.raft.forgetLeader(campaignInTicks)
  }

  /**
   * Feeds a message received from the network. A malformed message throws
   * InvalidMessageError and changes nothing. What the core ignores on purpose, without
   * error: messages of older terms (answered so a stale leader learns the new term),
   * vote requests while a live leader's lease runs, higher-term messages from
   * non-members while a leader is live, responses and reads from non-members, votes of
   * non-voters, forwarded proposals that cannot be placed (the proposer retries).
   */
  step (m: Message): void {
    const reason = checkMessage(m, this.raft.id)
    if (reason !== undefined) throw new InvalidMessageError(m, reason)
    try {
      this.raft.step(m)
    } catch (err) {
      if (err instanceof ProposalDroppedError) return
      throw err
    }
  }

  /** Proposes one command; throws ProposalDroppedError when it cannot be accepted now. */
  propose (data: Uint8Array): void {
    this.proposeBatch([data])
  }

  /** Proposes several commands at once (one append message per follower). */
  proposeBatch (datas: Uint8Array[]): void {
    if (datas.length === 0) return
    const entries = datas.map(data => ({ term: 0, index: 0, type: EntryType.Normal, data }))
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, to: this.raft.id, entries }))
  }

  /** Proposes a single-server membership change; at most one may be pending at a time. */
  proposeConfChange (cc: ConfChange): void {
    const entries = [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, to: this.raft.id, entries }))
  }

  /** Applies a committed conf change entry; call it when applying that entry. */
  applyConfChange (cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc)
  }

  /**
   * Requests a linearizable read: a ReadState with this context appears in a later Ready
   * once it is safe to read state applied through its index. Lost on leader change; the
   * caller retries after a timeout.
   */
  readIndex (context: Uint8Array): void {
    this.raft.step(makeMessage({ type: MessageType.ReadIndex, from: this.raft.id, to: this.raft.id, context }))
  }

  /** Hands leadership to `to` (on the leader; a follower may only ask for itself). */
  transferLeader (to: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.TransferLeader, from: to, to: this.raft.id }))
  }

  /** The transport reports whether a snapshot reached `to`. */
  reportSnapshot (to: NodeId, ok: boolean): void {
    this.raft.step(makeMessage({ type: MessageType.SnapStatus, from: to, to: this.raft.id, reject: !ok }))
  }

  reportUnreachable (to: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.Unreachable, from: to, to: this.raft.id }))
  }

  private softState (): SoftState {
    return { leader: this.raft.lead, role: this.raft.state }
  }

  hasReady (): boolean {
    if (this.pending !== undefined) return false
    const r = this.raft
    const soft = this.softState()
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) return true
    if (!sameHardState(r.hardState(), this.prevHard)) return true
    return r.raftLog.hasPendingSnapshot() || r.raftLog.unstableEntries().length > 0 || r.msgs.length > 0 ||
      r.readStates.length > 0 || r.raftLog.hasNextCommittedEntries()
  }

  /** What to persist, send and apply next; call advance() when done. */
  ready (): Ready {
    if (this.pending !== undefined) throw new Error('raft: ready() called again before advance()')
    const r = this.raft
    const rd: Ready = {
      entries: r.raftLog.unstableEntries().slice(),
      committedEntries: r.raftLog.nextCommittedEntries(),
      messages: coalesceAppends(r.msgs, r.maxMsgSize),
      readStates: r.readStates
    }
    r.msgs = []
    r.readStates = []
    const soft = this.softState()
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) rd.softState = soft
    const hard = r.hardState()
    if (!sameHardState(hard, this.prevHard)) rd.hardState = hard
    const snap = r.raftLog.unstable.snapshot
    if (snap !== undefined) rd.snapshot = snap
    this.pending = rd
    return rd
  }

  /** The last Ready was persisted, sent and applied. */
  advance (): void {
    const rd = this.pending
    if (rd === undefined) throw new Error('raft: advance() without a ready()')
    this.pending = undefined
    const log = this.raft.raftLog
    if (rd.softState !== undefined) this.prevSoft = rd.softState
    if (rd.hardState !== undefined) this.prevHard = rd.hardState
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index)
      if (rd.snapshot.metadata.index > log.applied) log.appliedTo(rd.snapshot.metadata.index)
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1].index
      if (last > log.applied) log.appliedTo(last)
    }
    if (rd.entries.length > 0) {
      const e = rd.entries[rd.entries.length - 1]
      log.stableTo(e.index, e.term)
    }
  }

  status (): Status {
    const r = this.raft
    const st: Status = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      firstIndex: r.raftLog.firstIndex(),
      lead: r.lead,
      role: r.state,
      voters: [...r.prs.voters],
      learners: [...r.prs.learners],
      leadTransferee: r.leadTransferee
    }
    if (r.state === StateRole.Leader) {
      st.progress = {}
      for (const [id, pr] of r.prs.progress) st.progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive }
    }
    return st
  }

  /** Term of entry i as the core sees it (persisted or not); 0 if unknown or compacted. */
  term (index: number): number {
    return this.raft.raftLog.termOrZero(index)
  }
}

/**
 * Merges consecutive appends to the same follower (proposals made one by one between two
 * Readies) into one message of at most maxBytes of entries; order per follower is kept.
 */
function coalesceAppends (msgs: Message[], maxBytes: number): Message[] {
  if (msgs.length < 2) return msgs
  const out: Message[] = []
  // per follower: position in `out` of the last message to it, and its entry bytes
  const last = new Map<NodeId, { at: number, bytes: number, copied: boolean }>()
  for (const m of msgs) {
    let bytes = 0
    for (const e of m.entries) bytes += entrySize(e)
    const prev = last.get(m.to)
    const p = prev === undefined ? undefined : out[prev.at]
    if (prev !== undefined && p !== undefined && m.type === MessageType.App && p.type === MessageType.App &&
      m.entries.length > 0 && p.entries.length > 0 && p.term === m.term &&
      m.index === p.index + p.entries.length && m.logTerm === p.entries[p.entries.length - 1].term &&
      prev.bytes + bytes <= maxBytes) {
      // copy once: a message's entries array may be shared with the log
      const merged = prev.copied ? p : { ...p, entries: p.entries.slice() }
      for (const e of m.entries) merged.entries.push(e)
      merged.commit = Math.max(merged.commit, m.commit)
      out[prev.at] = merged
      prev.bytes += bytes
      prev.copied = true
      continue
    }
    last.set(m.to, { at: out.length, bytes, copied: false })
    out.push(m)
  }
  return out
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}
