// The Raft state machine (after etcd-io/raft's raft.go): pure, single-threaded, driven by
// step() and tick(). Messages to send accumulate in `msgs`; RawNode hands them out in a
// Ready after the state they depend on was persisted.
import { ConfChangeType, EntryType, MessageType, StateRole } from '../types.js'
import type { ConfChange, ConfState, Entry, HardState, LogStorage, Message, NodeId, ReadState } from '../types.js'
import { decodeConfChange, validateConfChange } from './conf-change-codec.js'
import { isResponse, makeMessage } from './messages.js'
import { Progress, ProgressState, ProgressTracker, VoteResult } from './progress.js'
import { RaftLog } from './raft-log.js'
import { ReadOnly } from './read-only.js'

export interface RaftConfig {
  id: NodeId
  storage: LogStorage
  /** seeded randomness in [0, 1) for the election timeout jitter (never Math.random in tests) */
  rand: () => number
  /** ticks without a leader before campaigning; randomized in [electionTick, 2*electionTick) (default 10) */
  electionTick?: number
  /** ticks between leader heartbeats (default 1) */
  heartbeatTick?: number
  /** pre-vote phase so a rejoining node cannot disrupt a healthy leader (default true) */
  preVote?: boolean
  /** a leader that has not heard from a quorum within an election timeout steps down (default true) */
  checkQuorum?: boolean
  /** bytes of entries per append message (default 1 MiB) */
  maxSizePerMsg?: number
  /** appends in flight per follower in replicate state (default 256) */
  maxInflightMsgs?: number
  /** bytes of committed entries per Ready (default 64 MiB) */
  maxCommittedSizePerReady?: number
  /** index already applied by the state machine (on restart) */
  applied?: number
}

export class ProposalDroppedError extends Error {
  constructor (reason: string) {
    super(`raft proposal dropped: ${reason}`)
    this.name = 'ProposalDroppedError'
  }
}

export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer')
/**
 * Context of an append rejection from a member that lost its log (its storage was damaged
 * and set aside): unlike a stale rejection, it is believed even below the member's known
 * match, so the leader probes it from its real last index again (and sends a snapshot).
 */
export const LOG_LOST = new TextEncoder().encode('LogLost')
const EMPTY = new Uint8Array(0)

enum CampaignType { PreElection, Election, Transfer }

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export class Raft {
  readonly id: NodeId
  term = 0
  vote: NodeId | '' = ''
  lead: NodeId | '' = ''
  state = StateRole.Follower
  isLearner = false
  readonly raftLog: RaftLog
  prs: ProgressTracker
  msgs: Message[] = []
  readStates: ReadState[] = []
  leadTransferee: NodeId | '' = ''
  /** leader: index of the latest conf change proposed; none may be proposed while it is unapplied */
  pendingConfIndex = 0
  private readOnly = new ReadOnly()
  private pendingReadIndexMessages: Message[] = []
  electionElapsed = 0
  private heartbeatElapsed = 0
  private randomizedElectionTimeout = 0
  readonly electionTimeout: number
  readonly heartbeatTimeout: number
  readonly preVote: boolean
  readonly checkQuorum: boolean
  readonly maxMsgSize: number
  private readonly maxInflight: number
  private readonly rand: () => number

  constructor (c: RaftConfig) {
    if (typeof c.id !== 'string' || c.id === '') throw new Error('raft config: id is empty')
    this.id = c.id
    this.electionTimeout = c.electionTick ?? 10
    this.heartbeatTimeout = c.heartbeatTick ?? 1
    if (!(this.heartbeatTimeout >= 1)) throw new Error('raft config: heartbeatTick must be ≥ 1')
    if (!(this.electionTimeout > this.heartbeatTimeout)) throw new Error('raft config: electionTick must be greater than heartbeatTick')
    this.preVote = c.preVote ?? true
    this.checkQuorum = c.checkQuorum ?? true
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024
    this.maxInflight = c.maxInflightMsgs ?? 256
    if (!(this.maxInflight >= 1)) throw new Error('raft config: maxInflightMsgs must be ≥ 1')
    this.rand = c.rand
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? 64 * 1024 * 1024)
    const { hardState, confState } = c.storage.initialState()
    this.prs = new ProgressTracker(this.maxInflight)
    this.restoreConf(confState)
    if (hardState.term !== 0 || hardState.vote !== '' || hardState.commit !== 0) this.loadState(hardState)
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied)
    this.becomeFollower(this.term, '')
  }

  // ---- state ----

  hardState (): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed }
  }

  private loadState (hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(`raft: persisted commit ${hs.commit} is outside [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`)
    }
    this.raftLog.committed = hs.commit
    this.term = hs.term
    this.vote = hs.vote
  }

  /** Rebuilds membership from a ConfState (snapshot or restart). */
  private restoreConf (cs: ConfState): void {
    this.prs = new ProgressTracker(this.maxInflight)
    const next = this.raftLog.lastIndex() + 1
    for (const v of cs.voters) {
      this.prs.voters.add(v)
      this.prs.progress.set(v, new Progress(next, this.maxInflight, false))
    }
    for (const l of cs.learners) {
      if (this.prs.voters.has(l)) continue
      this.prs.learners.add(l)
      this.prs.progress.set(l, new Progress(next, this.maxInflight, true))
    }
    this.isLearner = this.prs.learners.has(this.id)
    const self = this.prs.progress.get(this.id)
    if (self !== undefined) self.match = this.raftLog.lastIndex()
  }

  confState (): ConfState {
    return { voters: [...this.prs.voters], learners: [...this.prs.learners] }
  }

  /** May this node campaign? (a voter of its configuration, not installing a snapshot) */
  promotable (): boolean {
    return this.prs.voters.has(this.id) && !this.raftLog.hasPendingSnapshot()
  }

  private inLease (): boolean {
    return this.checkQuorum && this.lead !== '' && this.electionElapsed < this.electionTimeout
  }

  private send (m: Message): void {
    // a forwarded proposal or read keeps its origin as sender
    if (m.from === '') m.from = this.id
    if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex && m.term === 0) m.term = this.term
    this.msgs.push(m)
  }

  private reset (term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = ''
    }
    this.lead = ''
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.resetRandomizedElectionTimeout()
    this.leadTransferee = ''
    this.prs.resetVotes()
    const last = this.raftLog.lastIndex()
    for (const [id, old] of this.prs.progress) {
      const pr = new Progress(last + 1, this.maxInflight, old.isLearner)
      if (id === this.id) pr.match = last
      this.prs.progress.set(id, pr)
    }
    this.pendingConfIndex = 0
    this.readOnly = new ReadOnly()
    this.pendingReadIndexMessages = []
  }

  private resetRandomizedElectionTimeout (): void {
    const r = this.rand()
    const jitter = Math.min(this.electionTimeout - 1, Math.max(0, Math.floor(r * this.electionTimeout)))
    this.randomizedElectionTimeout = this.electionTimeout + jitter
  }

  private pastElectionTimeout (): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout
  }

  becomeFollower (term: number, lead: NodeId | ''): void {
    this.reset(term)
    this.lead = lead
    this.state = StateRole.Follower
  }

  private becomeCandidate (): void {
    if (this.state === StateRole.Leader) throw new Error('raft: leader cannot become candidate')
    this.reset(this.term + 1)
    this.vote = this.id
    this.state = StateRole.Candidate
  }

  private becomePreCandidate (): void {
    if (this.state === StateRole.Leader) throw new Error('raft: leader cannot become pre-candidate')
    // a pre-candidate changes neither term nor vote
    this.prs.resetVotes()
    this.lead = ''
    this.state = StateRole.PreCandidate
  }

  private becomeLeader (): void {
    if (this.state === StateRole.Follower) throw new Error('raft: follower cannot become leader')
    this.reset(this.term)
    this.lead = this.id
    this.state = StateRole.Leader
    this.prs.progress.get(this.id)?.becomeReplicate()
    // entries of earlier terms are committed only through an entry of this term (§5.4.2);
    // no conf change may be proposed before everything up to here is applied
    this.pendingConfIndex = this.raftLog.lastIndex()
    this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }])
  }

  // ---- ticks ----

  tick (): void {
    if (this.state === StateRole.Leader) this.tickHeartbeat()
    else this.tickElection()
  }

  private tickElection (): void {
    this.electionElapsed++
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0
      this.hup(CampaignType.PreElection)
    }
  }

  private tickHeartbeat (): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.checkQuorum) this.checkQuorumActive()
      if (this.state === StateRole.Leader && this.leadTransferee !== '') this.abortLeaderTransfer()
    }
    if (this.state !== StateRole.Leader) return
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0
      this.bcastHeartbeat()
    }
  }

  private checkQuorumActive (): void {
    if (!this.prs.quorumActive(this.id)) {
      this.becomeFollower(this.term, '')
      return
    }
    for (const [id, pr] of this.prs.progress) if (id !== this.id) pr.recentActive = false
  }

  // ---- elections ----

  /** Starts an election (pre-vote first when enabled), unless that is not allowed now. */
  private hup (t: CampaignType = CampaignType.PreElection): void {
    if (this.state === StateRole.Leader) return
    if (!this.promotable()) return
    if (this.hasUnappliedConfChange()) return
    this.campaign(t === CampaignType.PreElection && !this.preVote ? CampaignType.Election : t)
  }

  campaignNow (): void {
    this.hup(CampaignType.PreElection)
  }

  /**
   * etcd's ForgetLeader: the host has strong reason to believe this follower's leader is
   * dead (an outside failure detector) and knows, on its clock, that the lease this node
   * granted it by answering has run out. It forgets the leader, staying a leaderless
   * follower in its term, so it grants (pre-)votes at once instead of refusing them for
   * an election timeout. With `campaignInTicks` it also campaigns after that many ticks
   * rather than a whole randomized election timeout (the one member the host picks, so
   * the followers do not split the vote).
   */
  forgetLeader (campaignInTicks?: number): void {
    if (this.state !== StateRole.Follower || this.lead === '') return
    this.lead = ''
    if (campaignInTicks !== undefined) this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - campaignInTicks)
  }

  private hasUnappliedConfChange (): boolean {
    const { applied, committed } = this.raftLog
    if (committed <= applied) return false
    const lo = Math.max(applied + 1, this.raftLog.firstIndex())
    for (let i = lo; i <= committed; i += 256) {
      for (const e of this.raftLog.slice(i, Math.min(committed + 1, i + 256))) {
        if (e.type === EntryType.ConfChange) return true
      }
    }
    return false
  }

  private campaign (t: CampaignType): void {
    let term: number
    let voteType: MessageType
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate()
      voteType = MessageType.PreVote
      term = this.term + 1
    } else {
      this.becomeCandidate()
      voteType = MessageType.Vote
      term = this.term
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election)
      else this.becomeLeader()
      return
    }
    const lastIndex = this.raftLog.lastIndex()
    const lastTerm = this.raftLog.lastTerm()
    for (const id of this.prs.voters) {
      if (id === this.id) continue
      this.send(makeMessage({
        type: voteType,
        to: id,
        term,
        index: lastIndex,
        logTerm: lastTerm,
        context: t === CampaignType.Transfer ? CAMPAIGN_TRANSFER : EMPTY
      }))
    }
  }

  private poll (id: NodeId, granted: boolean): VoteResult {
    this.prs.recordVote(id, granted)
    return this.prs.tallyVotes().result
  }

  // ---- step ----

  step (m: Message): void {
    if (m.term === 0) {
      // local message or termless forward (Prop, ReadIndex)
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = sameBytes(m.context, CAMPAIGN_TRANSFER)
        // within the lease of a live leader, vote requests are ignored: a node that was
        // partitioned away must not disrupt the group when it comes back
        if (!force && this.inLease()) return
      } else if (this.inLease() && !this.prs.isMember(m.from)) {
        // a higher term from outside the configuration, while a leader is known to be alive
        return
      }
      if (isResponse(m.type) && !this.prs.isMember(m.from)) return
      if (m.type === MessageType.PreVote) {
        // a pre-vote never changes our term
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // the term is bumped only once the pre-vote wins
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, '')
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // tell a stale leader about the newer term so that it steps down
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from }))
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        // a candidate behind our term learns it from the rejection (§5.1); without this, a
        // voter this node never writes to could campaign below its term forever
        const type = m.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp
        this.send(makeMessage({ type, to: m.from, term: this.term, reject: true }))
      }
      return
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote: {
        const canVote = this.vote === m.from ||
          (this.vote === '' && this.lead === '') ||
          (m.type === MessageType.PreVote && m.term > this.term)
        const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(makeMessage({ type: respType, to: m.from, term: m.term }))
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0
            this.vote = m.from
          }
        } else if (this.term > 0) {
          // (a node that never saw a term has nothing to tell; a term-0 message is invalid)
          this.send(makeMessage({ type: respType, to: m.from, term: this.term, reject: true }))
        }
        return
      }
    }
    switch (this.state) {
      case StateRole.Leader: this.stepLeader(m); return
      case StateRole.Candidate:
      case StateRole.PreCandidate: this.stepCandidate(m); return
      case StateRole.Follower: this.stepFollower(m)
    }
  }

  private stepLeader (m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        this.leaderPropose(m)
        return
      case MessageType.ReadIndex:
        if (m.from !== this.id && !this.prs.isMember(m.from)) return
        if (this.prs.isSingleton()) {
          this.answerRead(m, this.raftLog.committed)
          return
        }
        // a new leader learns the commit index only by committing an entry of its term
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m)
          return
        }
        this.startRead(m)
        return
    }
    const pr = this.prs.progress.get(m.from)
    if (pr === undefined) return
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr)
        return
      case MessageType.HeartbeatResp: {
        pr.recentActive = true
        pr.probeSent = false
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne()
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from)
        if (m.context.length === 0) return
        const acks = this.readOnly.recvAck(m.from, m.context)
        if (acks === undefined || !this.prs.hasQuorum(acks)) return
        for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs.req, rs.index)
        return
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return
        if (m.reject) pr.pendingSnapshot = 0
        // wait for a heartbeat response before probing again
        pr.becomeProbe()
        pr.probeSent = true
        return
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe()
        return
      case MessageType.TransferLeader: {
        if (pr.isLearner) return
        const transferee = m.from
        if (this.leadTransferee !== '') {
          if (this.leadTransferee === transferee) return
          this.abortLeaderTransfer()
        }
        if (transferee === this.id) return
        // the transfer must finish within an election timeout
        this.electionElapsed = 0
        this.leadTransferee = transferee
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee)
        else this.sendAppend(transferee)
      }
    }
  }

  private leaderPropose (m: Message): void {
    if (m.from !== this.id && !this.prs.isMember(m.from)) throw new ProposalDroppedError(`forwarded by non-member ${m.from}`)
    if (!this.prs.progress.has(this.id)) throw new ProposalDroppedError('this leader was removed from the group')
    if (this.leadTransferee !== '') throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`)
    let confIndex = 0
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]
      if (e.type !== EntryType.ConfChange) continue
      if (confIndex !== 0 || this.pendingConfIndex > this.raftLog.applied) {
        throw new ProposalDroppedError('another membership change is pending')
      }
      // a new leader first commits an entry of its term: any change left pending by an
      // earlier leader is then either committed or gone (Ongaro's single-server fix)
      if (!this.committedEntryInCurrentTerm()) throw new ProposalDroppedError('the leader has not committed an entry of its term yet')
      this.checkConfChange(decodeConfChange(e.data))
      confIndex = this.raftLog.lastIndex() + i + 1
    }
    const entries: Entry[] = m.entries.map(e => ({ term: 0, index: 0, type: e.type, data: e.data }))
    this.appendEntry(entries)
    if (confIndex !== 0) this.pendingConfIndex = confIndex
    this.bcastAppend()
  }

  private checkConfChange (cc: ConfChange): void {
    validateConfChange(cc)
    if (cc.type === ConfChangeType.RemoveNode) {
      if (!this.prs.isMember(cc.node)) throw new ProposalDroppedError(`${cc.node} is not a member`)
      if (this.prs.voters.has(cc.node) && this.prs.voters.size === 1) throw new ProposalDroppedError('cannot remove the last voter')
    } else if (cc.type === ConfChangeType.AddLearner) {
      if (this.prs.voters.has(cc.node) && this.prs.voters.size === 1) throw new ProposalDroppedError('cannot demote the last voter')
    }
  }

  private handleAppendResponse (m: Message, pr: Progress): void {
    pr.recentActive = true
    if (m.reject && m.rejectHint < pr.match && sameBytes(m.context, LOG_LOST)) {
      pr.lostLog(m.rejectHint)
      this.sendAppend(m.from)
      return
    }
    if (m.reject) {
      // fast back-off: the follower hints an index and its term there; skip every entry
      // of ours whose term is above that term in one step
      let nextProbe = m.rejectHint
      if (m.logTerm > 0) nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0]
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe()
        this.sendAppend(m.from)
      }
      return
    }
    const oldPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index)) return
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate()
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
      pr.becomeProbe()
      pr.becomeReplicate()
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index)
    }
    if (this.maybeCommit()) {
      this.releasePendingReads()
      this.bcastAppend()
    } else if (oldPaused) {
      this.sendAppend(m.from)
    }
    // pipelining: fill the follower's inflight window
    while (this.maybeSendAppend(m.from, false)) { /* keep sending */ }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from)
  }

  private stepCandidate (m: Message): void {
    const myVoteResp = this.state === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp
    switch (m.type) {
      case MessageType.Prop:
        throw new ProposalDroppedError('no leader')
      case MessageType.App:
        this.becomeFollower(m.term, m.from)
        this.handleAppendEntries(m)
        return
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from)
        this.handleHeartbeat(m)
        return
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from)
        this.handleSnapshot(m)
        return
      case myVoteResp: {
        const res = this.poll(m.from, !m.reject)
        if (res === VoteResult.Won) {
          if (this.state === StateRole.PreCandidate) {
            this.campaign(CampaignType.Election)
          } else {
            this.becomeLeader()
            this.bcastAppend()
          }
        } else if (res === VoteResult.Lost) {
          // a pre-candidate's term is unchanged; a candidate keeps its new term
          this.becomeFollower(this.term, '')
        }
      }
    }
  }

  private stepFollower (m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === '') throw new ProposalDroppedError('no leader')
        if (m.from !== this.id) throw new ProposalDroppedError('a follower does not forward proposals it was forwarded')
        this.send({ ...m, to: this.lead })
        return
      case MessageType.App:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleAppendEntries(m)
        return
      case MessageType.Heartbeat:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleHeartbeat(m)
        return
      case MessageType.Snap:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleSnapshot(m)
        return
      case MessageType.TransferLeader:
        // a follower forwards only a local request to transfer leadership to itself, so
        // that a forwarded message's sender is always the node that sent it
        if (this.lead === '' || m.term !== 0 || m.from !== this.id) return
        this.send({ ...m, to: this.lead })
        return
      case MessageType.TimeoutNow:
        if (m.from !== this.lead) return
        // leadership transfer: campaign at once, skipping pre-vote and the lease
        this.hup(CampaignType.Transfer)
        return
      case MessageType.ReadIndex:
        if (this.lead === '' || m.from !== this.id) return
        this.send({ ...m, to: this.lead })
        return
      case MessageType.ReadIndexResp:
        if (m.from !== this.lead) return
        this.readStates.push({ index: m.index, context: m.context })
    }
  }

  // ---- follower handlers ----

  private handleAppendEntries (m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }))
      return
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNew >= 0) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: lastNew }))
      return
    }
    // reject with a hint: the largest index ≤ the probed one whose term is ≤ the leader's
    // term there, so the leader can skip whole terms of conflicting entries
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex())
    const [idx, term] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm)
    this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: idx, logTerm: term }))
  }

  private handleHeartbeat (m: Message): void {
    // the leader sends min(match, commit), which this log is guaranteed to hold
    if (m.commit > this.raftLog.committed && m.commit <= this.raftLog.lastIndex()) this.raftLog.commitTo(m.commit)
    this.send(makeMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }))
  }

  private handleSnapshot (m: Message): void {
    const s = m.snapshot
    if (s !== undefined && this.restore(s)) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }))
    } else {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }))
    }
  }

  /** Installs a snapshot from the leader; false if it is stale or already covered by the log. */
  private restore (s: NonNullable<Message['snapshot']>): boolean {
    const md = s.metadata
    if (md.index <= this.raftLog.committed) return false
    if (this.state !== StateRole.Follower) {
      this.becomeFollower(this.term + 1, '')
      return false
    }
    // a node need not be in the snapshot's configuration: when it was added after the
    // snapshot, it learns of its membership from the entries that follow
    if (this.raftLog.matchTerm(md.index, md.term)) {
      // the log already holds the snapshot's last entry: just fast-forward commit
      this.raftLog.commitTo(md.index)
      return false
    }
    this.raftLog.restore(s)
    this.restoreConf(md.conf)
    return true
  }

  // ---- leader helpers ----

  private appendEntry (es: Entry[]): void {
    let li = this.raftLog.lastIndex()
    for (const e of es) {
      e.term = this.term
      e.index = ++li
    }
    this.raftLog.append(es)
    this.prs.progress.get(this.id)?.maybeUpdate(this.raftLog.lastIndex())
    this.maybeCommit()
  }

  private maybeCommit (): boolean {
    return this.raftLog.maybeCommit(this.prs.committed(), this.term)
  }

  private committedEntryInCurrentTerm (): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term
  }

  private bcastAppend (): void {
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendAppend(id)
    }
  }

  private bcastHeartbeat (): void {
    const ctx = this.readOnly.lastPendingContext() ?? EMPTY
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, ctx)
    }
  }

  private sendHeartbeat (to: NodeId, ctx: Uint8Array): void {
    const pr = this.prs.progress.get(to)
    if (pr === undefined) return
    // never commit past what the follower is known to hold
    const commit = Math.min(pr.match, this.raftLog.committed)
    this.send(makeMessage({ type: MessageType.Heartbeat, to, commit, context: ctx }))
  }

  private sendAppend (to: NodeId): void {
    this.maybeSendAppend(to, true)
  }

  /** Sends entries (or a snapshot) to `to` unless its progress is paused; true if sent. */
  private maybeSendAppend (to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to)
    if (pr === undefined || pr.isPaused()) return false
    const prevIndex = pr.next - 1
    let prevTerm: number | undefined
    let ents: Entry[] | undefined
    try {
      prevTerm = this.raftLog.term(prevIndex)
      ents = this.raftLog.entriesFrom(pr.next, this.maxMsgSize)
    } catch {
      // the entries were compacted: a snapshot is needed
    }
    if (prevTerm === undefined || ents === undefined) {
      if (!pr.recentActive) return false
      const snapshot = this.raftLog.snapshot()
      if (snapshot.metadata.index === 0) return false
      pr.becomeSnapshot(snapshot.metadata.index)
      this.send(makeMessage({ type: MessageType.Snap, to, snapshot }))
      return true
    }
    if (ents.length === 0 && !sendIfEmpty) return false
    this.send(makeMessage({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed }))
    if (ents.length > 0) {
      const last = ents[ents.length - 1].index
      if (pr.state === ProgressState.Replicate) {
        pr.next = last + 1
        pr.inflights.add(last)
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true
      }
    }
    return true
  }

  private sendTimeoutNow (to: NodeId): void {
    this.send(makeMessage({ type: MessageType.TimeoutNow, to }))
  }

  private abortLeaderTransfer (): void {
    this.leadTransferee = ''
  }

  private startRead (m: Message): void {
    this.readOnly.addRequest(this.raftLog.committed, m)
    // the leader acknowledges its own heartbeat
    const acks = this.readOnly.recvAck(this.id, m.context)
    if (acks !== undefined && this.prs.hasQuorum(acks)) {
      for (const rs of this.readOnly.advance(m.context)) this.answerRead(rs.req, rs.index)
      return
    }
    for (const id of this.prs.progress.keys()) {
      if (id !== this.id) this.sendHeartbeat(id, m.context)
    }
  }

  private releasePendingReads (): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return
    const pending = this.pendingReadIndexMessages
    this.pendingReadIndexMessages = []
    for (const m of pending) this.startRead(m)
  }

  private answerRead (req: Message, index: number): void {
    if (req.from === this.id || req.from === '') {
      this.readStates.push({ index, context: req.context })
      return
    }
    this.send(makeMessage({ type: MessageType.ReadIndexResp, to: req.from, index, context: req.context }))
  }

  // ---- membership ----

  /** Applies a committed membership change (called by the application when it applies the entry). */
  applyConfChange (cc: ConfChange): ConfState {
    validateConfChange(cc)
    const last = this.raftLog.lastIndex()
    const { voters, learners, progress } = this.prs
    switch (cc.type) {
      case ConfChangeType.AddNode: {
        learners.delete(cc.node)
        voters.add(cc.node)
        const pr = progress.get(cc.node)
        if (pr !== undefined) {
          pr.isLearner = false
        } else {
          const npr = new Progress(last + 1, this.maxInflight, false)
          // a new member gets an election timeout of grace before check-quorum counts it
          npr.recentActive = true
          if (cc.node === this.id) npr.match = last
          progress.set(cc.node, npr)
        }
        break
      }
      case ConfChangeType.AddLearner: {
        voters.delete(cc.node)
        learners.add(cc.node)
        const pr = progress.get(cc.node)
        if (pr !== undefined) {
          pr.isLearner = true
        } else {
          const npr = new Progress(last + 1, this.maxInflight, true)
          npr.recentActive = true
          if (cc.node === this.id) npr.match = last
          progress.set(cc.node, npr)
        }
        break
      }
      case ConfChangeType.RemoveNode:
        voters.delete(cc.node)
        learners.delete(cc.node)
        progress.delete(cc.node)
        break
    }
    this.isLearner = learners.has(this.id)
    if (this.state === StateRole.Leader) {
      if (!voters.has(this.id)) {
        // a removed (or demoted) leader tells the others the commit index, then steps down
        this.maybeCommit()
        this.bcastAppend()
        this.becomeFollower(this.term, '')
      } else {
        if (this.maybeCommit()) this.releasePendingReads()
        this.bcastAppend()
        if (this.leadTransferee !== '' && !voters.has(this.leadTransferee)) this.abortLeaderTransfer()
      }
    }
    return this.confState()
  }
}
