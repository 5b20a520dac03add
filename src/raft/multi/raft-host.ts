// One node's host for many raft groups (one per app). It drives every group's core from
// one tick timer, processes all groups' Readys together — persist all (one fsync per
// group, all groups in parallel), then send, then apply, then advance — and sends over
// one transport: per flush, every message for a peer from every group goes into one
// batch, with heartbeats coalesced.
//
// Idle groups go quiet (CockroachDB's quiescence): a leader whose group has been idle for
// an election timeout, with every member caught up and everything applied, sends a last
// heartbeat marked `quiesce`; from then on neither it nor its followers tick the group,
// so a thousand idle groups cost nothing per group. Any proposal or non-heartbeat message
// wakes a group. Followers must still notice a dead leader: hosts send each peer a tiny
// liveness beacon (an empty batch) when they have sent it nothing for a while; a peer that
// falls silent wakes every quiet group it belongs to, and one the transport reports
// unreachable wakes the groups it leads — they then elect a new leader after one election
// timeout. A peer that an outside failure detector covers (PeerWatch: the node's pings) is
// beaconed only every few seconds: the detector's verdicts (peerDown, peerUp) do the job.
//
// A leader acts outside the log (the topology's controller starts cells on other nodes)
// only under a lease (leaseHolds): a quorum confirmed its leadership in a heartbeat round
// (a ReadIndex whose context the host chose) that began less than an election timeout ago,
// on the clock. Followers that answered it vote for no one else for an election timeout,
// so no newer leader exists meanwhile; a leader stalled (SIGSTOP) finds its lease lapsed
// when it runs again, before it hears of the newer term — ticks cannot tell, as a stall
// replays none of the ticks it missed.
//
// Snapshots larger than a chunk (well under the transport's frame limit) travel in pieces
// and are put together by the receiver (snapshot-chunks.ts).
//
// A group whose log was lost (its storage damaged and set aside, GroupInit.rejoin) runs as
// an empty member: it neither votes nor campaigns, since it may have acknowledged entries
// and votes it no longer remembers, and it tells the members it knows that its log is
// lost (LOG_LOST) until the leader has brought it up to the leader's log as of first
// contact (a snapshot and the tail); then it is a normal member again.
import { TypedEventEmitter } from '@libp2p/interface'
import { randomBytes } from 'node:crypto'
import { ConfChangeType, EntryType, MessageType, StateRole } from '../types.js'
import type { ConfChange, Entry, Message, NodeId, Ready, Snapshot, SoftState } from '../types.js'
import { LOG_LOST, createRawNode, createRand, decodeConfChange, makeMessage } from '../core/index.js'
import type { RawNode } from '../core/index.js'
import type { RaftTransport } from '../transport/types.js'
import { BatchBuilder, decodeBatch } from './raft-batch.js'
import { PeerLiveness } from './peer-liveness.js'
import { nextTickDelay } from './tick-schedule.js'
import { SnapshotAssembler, splitSnapshot } from './snapshot-chunks.js'
import { DEFAULT_COVERED_LIVENESS_INTERVAL_MS, DEFAULT_GROUP_RAFT_OPTIONS, DEFAULT_TICK_MS } from './types.js'
import type {
  GroupId, GroupInit, GroupRaftOptions, GroupStatus, GroupStorage, RaftHostComponents, RaftHostEvents,
  RaftHostInit, RaftHostStats, TickClock
} from './types.js'

export * from './types.js'

/** election jitter must differ between nodes: seed each core from real randomness */
function seedFromCrypto (): () => number {
  return createRand(randomBytes(4).readUInt32LE(0))
}

const systemClock: TickClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => { clearTimeout(handle as NodeJS.Timeout) }
}

/** ticks after which the member picked to replace a dead leader campaigns (forgetDeadLeaders): the other followers' verdicts on it land meanwhile */
const CAMPAIGN_SOON_TICKS = 2

/** a leader's lease (RaftHost.leaseHolds) and the confirmation under way */
interface LeaderLease {
  /** the term the lease was confirmed in, and until when (clock ms) it holds */
  term: number
  until: number
  asking?: { context: string, term: number, at: number, done: Promise<boolean>, resolve: (ok: boolean) => void, timer: unknown }
}

interface HostedGroup {
  id: GroupId
  node: RawNode
  storage: GroupStorage
  init: GroupInit
  members: Set<NodeId>
  /**
   * Nodes added by conf changes this node holds in its log but has not applied yet. Their
   * messages are accepted too: a newly added member may already lead (or replicate) before
   * this follower applies its addition, and refusing it would leave this follower unable to
   * ever learn the commit that adds it.
   */
  joining: Set<NodeId>
  soft: SoftState
  term: number
  commit: number
  applied: number
  removed: boolean
  quiesced: boolean
  /** leader: ticks since the group last did anything but heartbeats */
  idleTicks: number
  /**
   * rejoining with a lost log: the leader's last index at first contact (0 before), which
   * this member must hold before it may vote again, and ticks until it next says its log is lost
   */
  rejoining?: { target: number, pokeIn: number }
  lease: LeaderLease
}

export class RaftHost extends TypedEventEmitter<RaftHostEvents> {
  readonly self: NodeId
  readonly stats: RaftHostStats = {
    framesSent: 0, framesReceived: 0, bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0,
    heartbeatsCoalesced: 0, sendsDropped: 0, malformedBatches: 0, rejectedMessages: 0, unknownGroupMessages: 0,
    readyRounds: 0, readiesProcessed: 0, quiesces: 0, wakes: 0, livenessBeacons: 0, ticks: 0,
    snapshotPiecesSent: 0, snapshotPiecesReceived: 0, snapshotsReassembled: 0
  }

  private readonly transport: RaftTransport
  private readonly raftOptions: GroupRaftOptions
  private readonly clock: TickClock
  private readonly tickMs: number
  private readonly onUnknownGroup?: RaftHostInit['onUnknownGroup']
  private readonly admits?: RaftHostInit['admits']
  private readonly quiesceAfterTicks: number
  private readonly maxBatchBytes: number
  private readonly snapshotChunkBytes: number
  private readonly assembler: SnapshotAssembler
  private readonly liveness: PeerLiveness
  private peersStale = true
  private readonly groups = new Map<GroupId, HostedGroup>()
  private readonly dirty = new Set<HostedGroup>()
  private timer?: unknown
  /** when the armed tick timer fires */
  private timerDue = 0
  /** the longest the tick timer sleeps while every group is quiet */
  private readonly maxSleepMs: number
  /** a tick timer this late means this process was frozen (see tick) */
  private readonly frozenAfterMs: number
  private processing = false
  private scheduled = false
  private idle: Promise<void> = Promise.resolve()
  private running = false
  /** how long a quorum's confirmation keeps a leader's lease: the shortest election timeout */
  private readonly leaseMs: number
  private leaseRounds = 0

  constructor (components: RaftHostComponents, init: RaftHostInit) {
    super()
    this.self = init.self
    this.transport = components.transport
    this.raftOptions = { ...DEFAULT_GROUP_RAFT_OPTIONS, ...init.raft }
    this.tickMs = init.tickMs ?? DEFAULT_TICK_MS
    const electionTick = this.raftOptions.electionTick ?? 10
    this.quiesceAfterTicks = init.quiesceAfterTicks ?? electionTick
    const livenessIntervalMs = init.livenessIntervalMs ?? electionTick * this.tickMs / 2
    const watch = components.peerWatch
    const livenessTimeoutMs = init.livenessTimeoutMs ?? electionTick * this.tickMs * 2
    this.frozenAfterMs = livenessTimeoutMs
    const coveredIntervalMs = init.coveredLivenessIntervalMs ?? DEFAULT_COVERED_LIVENESS_INTERVAL_MS
    this.liveness = new PeerLiveness(livenessIntervalMs, livenessTimeoutMs,
      watch === undefined ? undefined : { intervalMs: coveredIntervalMs, timeoutMs: 4 * coveredIntervalMs, covers: peer => watch.covers(peer) })
    // also how soon a quiet host notices that the detector stopped covering a peer
    this.maxSleepMs = Math.max(this.tickMs, 4 * livenessIntervalMs)
    this.leaseMs = electionTick * this.tickMs
    // a batch, and a snapshot piece with room for a batch's other messages, fit one frame
    const frame = components.transport.maxPayloadBytes ?? Infinity
    this.maxBatchBytes = Math.min(init.maxBatchBytes ?? 4 * 1024 * 1024, Math.floor(frame / 2))
    this.snapshotChunkBytes = Math.max(1, Math.min(init.snapshotChunkBytes ?? 1024 * 1024, Math.floor(this.maxBatchBytes / 2)))
    this.assembler = new SnapshotAssembler(init.maxSnapshotBytes ?? 256 * 1024 * 1024)
    this.clock = components.clock ?? systemClock
    this.onUnknownGroup = init.onUnknownGroup
    this.admits = init.admits
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.transport.setReceiver({
      onBatch: (from, payload) => { this.receive(from, payload) },
      onUnreachable: (peer) => { this.unreachable(peer) }
    })
    this.armTick(true)
  }

  /** Stops ticking and waits for the Ready round in progress; storages stay open (their owner closes them). */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.transport.setReceiver({ onBatch: () => {}, onUnreachable: () => {} })
    await this.idle
  }

  /** a Ready round is under way or scheduled: something received has not been handled (answered) yet */
  get busy (): boolean {
    return this.scheduled || this.processing
  }

  /** Resolves once not busy. */
  async settled (): Promise<void> {
    while (this.busy) await this.idle
  }

  /** Hosts a group; with `bootstrap` on a fresh storage, it starts with those members. */
  addGroup (id: GroupId, init: GroupInit): void {
    if (this.groups.has(id)) throw new Error(`raft group ${id} is already hosted`)
    const applied = Math.max(init.applied ?? 0, init.storage.snapshot().metadata.index)
    const node = createRawNode({
      ...this.raftOptions,
      id: this.self,
      storage: init.storage,
      applied,
      peers: init.bootstrap,
      rand: seedFromCrypto()
    })
    const st = node.status()
    const members = new Set([...st.voters, ...st.learners])
    const rejoin = init.rejoin !== undefined && members.size === 0 && init.storage.lastIndex() === 0
    const group: HostedGroup = {
      id,
      node,
      storage: init.storage,
      init,
      members: rejoin ? new Set((init.rejoin ?? []).filter(m => m !== this.self)) : members,
      joining: new Set(addedNodes(unappliedEntries(init.storage, applied))),
      soft: { leader: st.lead, role: st.role },
      term: st.term,
      commit: st.commit,
      applied,
      removed: false,
      quiesced: false,
      idleTicks: 0,
      rejoining: rejoin ? { target: 0, pokeIn: 0 } : undefined,
      lease: { term: 0, until: 0 }
    }
    this.groups.set(id, group)
    this.peersStale = true
    this.markDirty(group)
    this.armTick(true)
  }

  /** Stops hosting a group (after its Ready round in progress, if any). */
  async removeGroup (id: GroupId): Promise<void> {
    const group = this.groups.get(id)
    if (group === undefined) return
    group.removed = true
    this.endLeaseRound(group, false)
    this.groups.delete(id)
    this.dirty.delete(group)
    this.assembler.dropGroup(id)
    this.peersStale = true
    await this.idle
  }

  hasGroup (id: GroupId): boolean {
    return this.groups.has(id)
  }

  groupIds (): GroupId[] {
    return [...this.groups.keys()]
  }

  status (id: GroupId): GroupStatus {
    const g = this.mustGet(id)
    return { group: id, leader: g.soft.leader, role: g.soft.role, term: g.term, commit: g.commit, applied: g.applied, members: [...g.members], quiesced: g.quiesced, rejoining: g.rejoining !== undefined }
  }

  /**
   * Whether this node leads the group under a lease: a quorum confirmed its leadership in a
   * round (renewLease) that began less than an election timeout ago, on the clock, and it
   * has not stepped down or begun handing leadership over since.
   */
  leaseHolds (id: GroupId): boolean {
    const g = this.mustGet(id)
    const st = g.node.status()
    return st.role === StateRole.Leader && st.leadTransferee === '' && st.term === g.lease.term && this.clock.now() < g.lease.until
  }

  /**
   * Leader only: asks the group's voters to confirm this node's leadership (one heartbeat
   * round; a quiet group stays quiet) and resolves with leaseHolds once they did, or false
   * when this node does not lead or no quorum confirmed within an election timeout. A round
   * already under way is joined.
   */
  async renewLease (id: GroupId): Promise<boolean> {
    const g = this.mustGet(id)
    const st = g.node.status()
    if (st.role !== StateRole.Leader || st.leadTransferee !== '') return false
    if (g.lease.asking !== undefined) return await g.lease.asking.done
    const context = `lease ${this.self} ${++this.leaseRounds}`
    const { promise, resolve } = Promise.withResolvers<boolean>()
    const timer = this.clock.setTimeout(() => { this.endLeaseRound(g, false) }, this.leaseMs)
    g.lease.asking = { context, term: st.term, at: this.clock.now(), done: promise, resolve, timer }
    g.node.readIndex(new TextEncoder().encode(context))
    this.markDirty(g)
    return await promise
  }

  /** A lease round ends: confirmed (a read state with its context came back) or not. */
  private endLeaseRound (g: HostedGroup, confirmed: boolean): void {
    const asking = g.lease.asking
    if (asking === undefined) return
    g.lease.asking = undefined
    this.clock.clearTimeout(asking.timer)
    // the lease runs from the round's start: every confirmation came after it
    if (confirmed && g.node.status().term === asking.term) g.lease = { term: asking.term, until: asking.at + this.leaseMs }
    asking.resolve(confirmed && !g.removed && this.leaseHolds(g.id))
  }

  /** Proposes a command; throws (ProposalDroppedError) when this node cannot take it, e.g. no leader is known. */
  propose (id: GroupId, data: Uint8Array): void {
    const g = this.mustGet(id)
    this.wake(g)
    g.node.propose(data)
    this.markDirty(g)
  }

  /** Proposes several commands in one append. */
  proposeBatch (id: GroupId, datas: Uint8Array[]): void {
    const g = this.mustGet(id)
    this.wake(g)
    g.node.proposeBatch(datas)
    this.markDirty(g)
  }

  proposeConfChange (id: GroupId, cc: ConfChange): void {
    const g = this.mustGet(id)
    this.wake(g)
    g.node.proposeConfChange(cc)
    this.markDirty(g)
  }

  /**
   * Saves `data`, the state machine's state as of `status(id).applied` (capture it and call
   * this without awaiting in between), as the group's snapshot, then drops the log before
   * it except the last `keepEntries` entries (which let slow followers catch up without a
   * snapshot). Followers too far behind are sent this snapshot.
   */
  async snapshotAndCompact (id: GroupId, data: Uint8Array, keepEntries = 0): Promise<Snapshot> {
    const g = this.mustGet(id)
    const index = g.applied
    const st = g.node.status()
    const snap = await g.storage.createSnapshot(index, { voters: st.voters, learners: st.learners }, data)
    const compactTo = Math.min(index, g.storage.lastIndex()) - keepEntries
    if (!g.removed && compactTo > g.storage.firstIndex() - 1) {
      g.storage.compact(compactTo)
      await g.storage.sync()
    }
    return snap
  }

  /** Starts an election in the group now (tests, leadership transfer on shutdown). */
  campaign (id: GroupId): void {
    const g = this.mustGet(id)
    this.wake(g)
    g.node.campaign()
    this.markDirty(g)
  }

  /**
   * Leader only: hands leadership to `to` — one member, or the best of several — by default
   * to any voter: the one whose log matches the leader's furthest (alive ones first), so it
   * can take over at once. Returns the transferee, or '' when this node does not lead the
   * group or none of the candidates is another voter.
   * The transfer completes when `to` wins its election (a 'leader-change' event); it is
   * abandoned after an election timeout, after which the caller may try another member.
   * A quiet group is woken first: a quiesced leader does not tick, so it could neither
   * time the transfer out nor send the catch-up the transferee may need.
   */
  transferLeadership (id: GroupId, to?: NodeId | NodeId[]): NodeId | '' {
    const g = this.mustGet(id)
    const st = g.node.status()
    if (st.role !== StateRole.Leader) return ''
    const candidates = to === undefined ? st.voters : typeof to === 'string' ? [to] : to
    const target = candidates
      .filter(v => v !== this.self && st.voters.includes(v))
      .sort((a, b) => Number(this.liveness.isAlive(b)) - Number(this.liveness.isAlive(a)) || (st.progress?.[b]?.match ?? 0) - (st.progress?.[a]?.match ?? 0) || (a < b ? -1 : 1))[0]
    if (target === undefined) return ''
    // the transferee may win its election at once: this node's lease ends here
    g.lease.until = 0
    this.wake(g)
    g.node.transferLeader(target)
    this.markDirty(g)
    return target
  }

  /**
   * The outside failure detector (PeerWatch) judged `peer` down: wake every quiet group it
   * is a member of, as when it falls silent, and stop waiting for it (a leader quiesces
   * without it; a transfer prefers live members).
   */
  peerDown (peer: NodeId): void {
    if (!this.liveness.down(peer)) return
    this.wakeGroupsOf(peer)
    this.forgetDeadLeaders()
    this.schedule()
  }

  /**
   * Followers whose leader is judged down (by the outside detector or by its silence)
   * forget it once the lease they granted it has run out on this clock: `leaseMs` since its
   * last frame (a follower answers a leader's heartbeat round when it hears it, and the
   * leader's lease counts from before). They then grant votes at once, and the live voter
   * with the lowest id campaigns within CAMPAIGN_SOON_TICKS: a killed leader is replaced a
   * few ticks after the verdict instead of a randomized election timeout later (chaos:
   * ~0.4 s of the failover of a node that was both an instance's primary and the leader).
   */
  private forgetDeadLeaders (): void {
    const now = this.clock.now()
    for (const g of this.groups.values()) {
      const leader = g.soft.leader
      if (g.quiesced || g.rejoining !== undefined || g.soft.role !== StateRole.Follower || leader === '' || this.liveness.isAlive(leader)) continue
      if (now - (this.liveness.lastHeard(leader) ?? -Infinity) < this.leaseMs) continue
      const live = g.node.status().voters.filter(m => m !== leader && (m === this.self || this.liveness.isAlive(m))).sort()
      g.node.forgetLeader(live[0] === this.self ? CAMPAIGN_SOON_TICKS : undefined)
      this.markDirty(g)
    }
  }

  /**
   * The outside failure detector suspects `peer` (it has not answered for a while; no
   * verdict yet): wake the quiet groups it leads, so their followers tick and elect another
   * leader an election timeout later if it stays silent (a live leader that is woken by
   * their pre-votes heartbeats again and keeps its place).
   */
  peerSuspect (peer: NodeId): void {
    for (const g of this.groups.values()) if (g.quiesced && g.soft.leader === peer) this.wake(g)
  }

  /** The outside failure detector judged `peer` up again: wake its quiet groups, so their leaders catch it up. */
  peerUp (peer: NodeId): void {
    if (this.liveness.heard(peer, this.clock.now())) this.wakeGroupsOf(peer)
  }

  // ---- driving the cores ----

  private mustGet (id: GroupId): HostedGroup {
    const g = this.groups.get(id)
    if (g === undefined) throw new Error(`raft group ${id} is not hosted on this node`)
    return g
  }

  /**
   * Arms the tick timer for the next tick while a group ticks (`active`), or, when every
   * group is quiet, for when the liveness work next falls due (tick-schedule.ts). An armed
   * timer that fires sooner is kept.
   */
  private armTick (active: boolean): void {
    if (!this.running) return
    const now = this.clock.now()
    const delay = nextTickDelay({ tickMs: this.tickMs, active: active || this.peersStale, now, livenessDue: this.liveness.nextDue(), maxSleepMs: this.maxSleepMs })
    if (this.timer !== undefined) {
      if (this.timerDue <= now + delay) return
      this.clock.clearTimeout(this.timer)
    }
    this.timerDue = now + delay
    this.timer = this.clock.setTimeout(() => { this.timer = undefined; this.tick() }, delay)
  }

  private tick (): void {
    this.stats.ticks++
    // This process was frozen (SIGSTOP, a suspended VM) longer than a peer may stay silent:
    // a quiet leader here may long have been replaced, and the slow beacons of covered peers
    // would not show it for seconds. Every quiet group wakes: a stale leader ticks, so
    // check-quorum (or a newer term in the answers) makes it step down at once.
    if (this.clock.now() - this.timerDue > this.frozenAfterMs) {
      for (const g of this.groups.values()) this.wake(g)
    }
    this.forgetDeadLeaders()
    const quiescing: HostedGroup[] = []
    const lost = new Map<NodeId, BatchBuilder[]>()
    let active = false
    for (const g of this.groups.values()) {
      if (g.rejoining !== undefined) {
        active = true
        // not ticked: a member that lost its log must not campaign
        if (--g.rejoining.pokeIn <= 0) this.sayLogLost(g, lost)
        continue
      }
      if (g.quiesced) continue
      if (this.quiesceAfterTicks > 0 && g.soft.role === StateRole.Leader && ++g.idleTicks >= this.quiesceAfterTicks) {
        g.idleTicks = 0
        if (this.canQuiesce(g)) {
          g.quiesced = true
          this.stats.quiesces++
          quiescing.push(g)
          continue
        }
      }
      g.node.tick()
      this.dirty.add(g)
      active = true
    }
    this.sendBatches(lost)
    this.sendQuiesceAndBeacons(quiescing)
    this.checkLiveness()
    this.schedule()
    this.armTick(active)
  }

  /**
   * Tells the members a rejoining group knows that its log ends at its last index: the
   * leader probes it from there (LOG_LOST); a message of an older term still wakes the
   * leader's quiet group, whose heartbeats then teach this member the term.
   */
  private sayLogLost (g: HostedGroup, out: Map<NodeId, BatchBuilder[]>): void {
    g.rejoining!.pokeIn = this.raftOptions.electionTick ?? 10
    const term = Math.max(1, g.node.status().term)
    for (const m of g.members) {
      if (m === this.self) continue
      this.builderFor(out, m).add(g.id, makeMessage({ type: MessageType.AppResp, from: this.self, to: m, term, reject: true, rejectHint: g.storage.lastIndex(), context: LOG_LOST }))
    }
  }

  /**
   * Leader only: idle, nothing unpersisted or unapplied, every live member holds the whole
   * log, and a majority of voters is live — a leader cut off from its majority must keep
   * ticking so check-quorum makes it step down. (A member presumed down is not waited for:
   * when it returns it campaigns, which wakes the group and gets it caught up.)
   */
  private canQuiesce (g: HostedGroup): boolean {
    if (g.node.hasReady() || this.dirty.has(g)) return false
    const st = g.node.status()
    if (st.role !== StateRole.Leader || st.leadTransferee !== '' || st.commit !== st.lastIndex || g.applied !== st.commit) return false
    const live = (id: NodeId): boolean => id === this.self || this.liveness.isAlive(id)
    if (st.voters.filter(live).length <= st.voters.length / 2) return false
    for (const id of [...st.voters, ...st.learners]) {
      if (live(id) && st.progress?.[id]?.match !== st.lastIndex) return false
    }
    return true
  }

  private wake (g: HostedGroup): void {
    g.idleTicks = 0
    if (!g.quiesced) return
    g.quiesced = false
    this.stats.wakes++
    this.armTick(true)
  }

  /** Quiesce heartbeats for groups going quiet, and a beacon to every peer we have been silent to. */
  private sendQuiesceAndBeacons (quiescing: HostedGroup[]): void {
    const now = this.clock.now()
    if (this.peersStale) {
      const peers = new Set<NodeId>()
      for (const g of this.groups.values()) for (const m of g.members) if (m !== this.self) peers.add(m)
      this.liveness.track(peers, now)
      this.peersStale = false
    }
    this.liveness.refresh(now)
    const perPeer = new Map<NodeId, BatchBuilder[]>()
    for (const g of quiescing) {
      for (const m of g.members) {
        if (m !== this.self) this.builderFor(perPeer, m).addQuiesce(g.id, g.term, g.commit)
      }
    }
    for (const peer of this.liveness.dueForBeacon(now)) {
      if (perPeer.has(peer)) continue
      perPeer.set(peer, [new BatchBuilder()])
      this.stats.livenessBeacons++
    }
    this.sendBatches(perPeer)
  }

  /**
   * A peer fell silent: wake every quiet group it is a member of. Followers of a group it
   * led elect a new leader; a leader here ticks again, so check-quorum makes it step down
   * if it lost its majority instead of claiming leadership while quiet.
   */
  private checkLiveness (): void {
    for (const peer of this.liveness.newlySilent(this.clock.now())) this.wakeGroupsOf(peer)
  }

  private wakeGroupsOf (peer: NodeId): void {
    for (const g of this.groups.values()) if (g.quiesced && g.members.has(peer)) this.wake(g)
  }

  private markDirty (g: HostedGroup): void {
    this.dirty.add(g)
    this.schedule()
  }

  private schedule (): void {
    if (this.scheduled || this.processing) return
    this.scheduled = true
    // setImmediate: everything that arrives in this I/O turn joins the same round
    this.idle = new Promise<void>(resolve => {
      setImmediate(() => {
        this.scheduled = false
        this.processReadies().then(resolve, resolve)
      })
    })
  }

  private async processReadies (): Promise<void> {
    this.processing = true
    try {
      while (this.dirty.size > 0) {
        const round: Array<{ g: HostedGroup, rd: Ready }> = []
        for (const g of this.dirty) {
          if (!g.removed && g.node.hasReady()) round.push({ g, rd: g.node.ready() })
        }
        this.dirty.clear()
        if (round.length === 0) break
        this.stats.readyRounds++
        this.stats.readiesProcessed += round.length
        const ok = await this.persist(round)
        this.send(ok)
        for (const { g, rd } of ok) {
          try {
            await this.applyReady(g, rd)
            if (g.removed) continue
            g.node.advance()
          } catch (err) {
            // the state machine could not apply a committed entry: this replica cannot go on
            this.failGroup(g, err as Error)
            continue
          }
          if (g.node.hasReady()) this.dirty.add(g)
        }
      }
    } finally {
      this.processing = false
    }
    if (this.dirty.size > 0) this.schedule()
  }

  /** Step 1 of the Ready contract: everything durable (one fsync per group, all in parallel) before any message leaves. */
  private async persist (round: Array<{ g: HostedGroup, rd: Ready }>): Promise<Array<{ g: HostedGroup, rd: Ready }>> {
    const results = await Promise.all(round.map(async ({ g, rd }) => {
      try {
        if (rd.snapshot !== undefined) await g.storage.applySnapshot(rd.snapshot)
        if (rd.entries.length > 0) {
          g.storage.append(rd.entries)
          for (const node of addedNodes(rd.entries)) g.joining.add(node)
        }
        if (rd.hardState !== undefined) g.storage.setHardState(rd.hardState)
        if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) await g.storage.sync()
        return true
      } catch (err) {
        this.failGroup(g, err as Error)
        return false
      }
    }))
    return round.filter((_, i) => results[i])
  }

  private send (round: Array<{ g: HostedGroup, rd: Ready }>): void {
    const perPeer = new Map<NodeId, BatchBuilder[]>()
    for (const { g, rd } of round) {
      for (const m of rd.messages) {
        if (m.snapshot === undefined || m.snapshot.data.length <= this.snapshotChunkBytes) {
          this.builderFor(perPeer, m.to).add(g.id, m)
          continue
        }
        const pieces = splitSnapshot(m, this.snapshotChunkBytes)
        pieces.forEach((piece, i) => { this.builderFor(perPeer, m.to).addSnapshotPiece(g.id, piece, i === pieces.length - 1) })
        this.stats.snapshotPiecesSent += pieces.length
      }
    }
    this.sendBatches(perPeer)
  }

  /** The peer's current batch, or a new one once it has grown past the batch size limit. */
  private builderFor (perPeer: Map<NodeId, BatchBuilder[]>, peer: NodeId): BatchBuilder {
    let list = perPeer.get(peer)
    if (list === undefined) {
      list = []
      perPeer.set(peer, list)
    }
    let b = list[list.length - 1]
    if (b === undefined || b.approxBytes >= this.maxBatchBytes) {
      b = new BatchBuilder()
      list.push(b)
    }
    return b
  }

  private sendBatches (perPeer: Map<NodeId, BatchBuilder[]>): void {
    const now = this.clock.now()
    for (const [peer, list] of perPeer) {
      this.liveness.sent(peer, now)
      let dropped = false
      for (const b of list) {
        const payload = b.encode()
        this.stats.messagesSent += b.messages
        this.stats.heartbeatsCoalesced += b.coalesced
        const ok = this.transport.send(peer, payload)
        if (ok) {
          this.stats.framesSent++
          this.stats.bytesSent += payload.length
        } else {
          this.stats.sendsDropped++
          dropped = true
        }
        // queued counts as sent: if the stream breaks later, the follower's progress is
        // probed again and the snapshot resent (a snapshot in pieces: every piece queued)
        for (const group of b.snapshots) {
          const g = this.groups.get(group)
          if (g === undefined) continue
          g.node.reportSnapshot(peer, ok && !dropped)
          this.dirty.add(g)
        }
      }
      if (dropped) this.unreachable(peer)
    }
  }

  private async applyReady (g: HostedGroup, rd: Ready): Promise<void> {
    if (rd.entries.length > 0 || rd.committedEntries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined || rd.softState !== undefined) g.idleTicks = 0
    if (rd.hardState !== undefined) {
      g.term = rd.hardState.term
      g.commit = rd.hardState.commit
    }
    if (rd.snapshot !== undefined) {
      const conf = rd.snapshot.metadata.conf
      g.members = new Set([...conf.voters, ...conf.learners])
      g.joining.clear()
      this.peersStale = true
      g.applied = Math.max(g.applied, rd.snapshot.metadata.index)
      await g.init.applySnapshot?.(rd.snapshot)
    }
    if (rd.committedEntries.length > 0) {
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) this.applyConfChange(g, e)
      }
      await g.init.apply?.(rd.committedEntries)
      g.applied = rd.committedEntries[rd.committedEntries.length - 1].index
    }
    for (const rs of rd.readStates) {
      if (g.lease.asking !== undefined && new TextDecoder().decode(rs.context) === g.lease.asking.context) this.endLeaseRound(g, true)
    }
    if (rd.softState !== undefined && (rd.softState.leader !== g.soft.leader || rd.softState.role !== g.soft.role)) {
      g.soft = { ...rd.softState }
      this.safeDispatchEvent('leader-change', { detail: this.status(g.id) })
    }
    if (g.rejoining !== undefined && g.rejoining.target > 0 && g.applied >= g.rejoining.target) {
      g.rejoining = undefined
      this.safeDispatchEvent('group-rejoined', { detail: this.status(g.id) })
    }
  }

  private applyConfChange (g: HostedGroup, e: Entry): void {
    let cc: ConfChange
    try {
      cc = decodeConfChange(e.data)
    } catch (err) {
      // committed by the group, so every member skips it the same way
      this.safeDispatchEvent('reject', { detail: { group: g.id, from: this.self, reason: `committed conf change at ${e.index} is invalid: ${(err as Error).message}` } })
      return
    }
    const conf = g.node.applyConfChange(cc)
    g.storage.setConfState(conf)
    g.members = new Set([...conf.voters, ...conf.learners])
    g.joining.delete(cc.node)
    this.peersStale = true
    if (cc.type === ConfChangeType.RemoveNode && cc.node === this.self) {
      // removed from the group: the topology layer decides when to drop the group's data
      g.soft = { leader: '', role: g.soft.role }
    }
  }

  private failGroup (g: HostedGroup, error: Error): void {
    g.removed = true
    this.endLeaseRound(g, false)
    this.groups.delete(g.id)
    this.dirty.delete(g)
    this.assembler.dropGroup(g.id)
    this.safeDispatchEvent('group-error', { detail: { group: g.id, error } })
  }

  // ---- network input ----

  private receive (from: NodeId, payload: Uint8Array): void {
    this.stats.framesReceived++
    this.stats.bytesReceived += payload.length
    // a peer back from silence (a restart, a healed partition) may have lost or missed entries
    // while its groups went quiet without it: wake them, so their leaders heartbeat it and catch
    // it up (a member whose log was lost and who knows no member could not ask for that itself)
    if (this.liveness.heard(from, this.clock.now())) this.wakeGroupsOf(from)
    let received
    try {
      received = decodeBatch(payload, from, this.self)
    } catch (err) {
      this.stats.malformedBatches++
      this.safeDispatchEvent('reject', { detail: { group: '', from, reason: (err as Error).message } })
      return
    }
    for (const { group, message: received1, quiesce, piece } of received) {
      let message = received1
      this.stats.messagesReceived++
      const g = this.groups.get(group)
      if (g === undefined) {
        this.stats.unknownGroupMessages++
        try {
          this.onUnknownGroup?.(group, from, message)
        } catch (err) {
          this.reject(group, from, `unknown-group hook failed: ${(err as Error).message}`)
        }
        continue
      }
      // a rejoining member hears anyone: the members it read from its damaged log may be out of date
      if (!g.members.has(from) && !g.joining.has(from) && g.members.size > 0 && g.rejoining === undefined && this.admits?.(group, from) !== true) {
        this.reject(group, from, `${from} is not a member of group ${group}`)
        continue
      }
      if (piece !== undefined) {
        this.stats.snapshotPiecesReceived++
        let whole: Message | undefined
        try {
          whole = this.assembler.add(from, group, piece)
        } catch (err) {
          this.reject(group, from, (err as Error).message)
          continue
        }
        if (whole === undefined) continue
        this.stats.snapshotsReassembled++
        message = whole
      }
      if (g.rejoining !== undefined && !this.rejoiningMayStep(g, message)) continue
      // heartbeats keep a quiet group quiet; anything else is activity
      if (message.type !== MessageType.Heartbeat && message.type !== MessageType.HeartbeatResp) this.wake(g)
      try {
        g.node.step(message)
      } catch (err) {
        this.reject(group, from, (err as Error).message)
        continue
      }
      if (quiesce && !g.quiesced) this.quiesceOnLeadersWord(g, from, message.term)
      this.dirty.add(g)
    }
    this.schedule()
  }

  /**
   * A rejoining member answers no vote (it may have voted in this term before its log was
   * lost) and goes quiet on nobody's word; the leader's log as of its first message to this
   * member is what it must hold before it is a voter like the others again.
   */
  private rejoiningMayStep (g: HostedGroup, m: Message): boolean {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) return false
    if (g.rejoining!.target === 0 && (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap)) {
      g.rejoining!.target = Math.max(m.commit, m.index + m.entries.length, m.snapshot?.metadata.index ?? 0)
    }
    return true
  }

  private quiesceOnLeadersWord (g: HostedGroup, from: NodeId, term: number): void {
    if (g.rejoining !== undefined) return
    const st = g.node.status()
    if (st.role !== StateRole.Follower || st.lead !== from || st.term !== term) return
    g.quiesced = true
    this.stats.quiesces++
  }

  private reject (group: GroupId, from: NodeId, reason: string): void {
    this.stats.rejectedMessages++
    this.safeDispatchEvent('reject', { detail: { group, from, reason } })
  }

  private unreachable (peer: NodeId): void {
    for (const g of this.groups.values()) {
      if (!g.members.has(peer)) continue
      if (g.quiesced && g.soft.leader === peer) this.wake(g)
      if (!g.quiesced) g.node.reportUnreachable(peer)
    }
  }
}

export function createRaftHost (components: RaftHostComponents, init: RaftHostInit): RaftHost {
  return new RaftHost(components, init)
}

/** Entries after `applied` that the storage holds (a restarted node's unapplied tail). */
function unappliedEntries (storage: GroupStorage, applied: number): Entry[] {
  const last = storage.lastIndex()
  return last > applied ? storage.entries(Math.max(applied + 1, storage.firstIndex()), last + 1) : []
}

/** Nodes that conf-change entries among `entries` add as voters or learners. */
function addedNodes (entries: Entry[]): NodeId[] {
  const nodes: NodeId[] = []
  for (const e of entries) {
    if (e.type !== EntryType.ConfChange) continue
    try {
      const cc = decodeConfChange(e.data)
      if (cc.type === ConfChangeType.AddNode || cc.type === ConfChangeType.AddLearner) nodes.push(cc.node)
    } catch {
      // an invalid conf change adds nobody; applying it is reported when it commits
    }
  }
  return nodes
}
