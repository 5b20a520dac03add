// The leader's controller (a loop like a Kubernetes controller): for every app group this
// node leads, each round compares the desired state (manifest + committed placement) with
// what runs, commits a new placement when capacity changed, and executes the steps that
// bring the running copies to the placement — start, update, promote a clone, hand over,
// stop — through messaging and the clone service. Placement leaves out the room other
// apps' leaders reserved, and cells are transformed on a node only once this app's
// reservations there are effective (reservation-sync.ts). It also replaces group members that
// have been missing from the capacity view long enough (suspicion before verdict).
// An update whose new code fails leaves the instance on its old code (the cell host keeps
// it): the controller then proposes a rollback of that cell to its previous revision.
// Once an app is settled (every copy runs as placed), it moves shards of keyed cells toward
// nodes that hold fewer, a few at a time, by planned handovers (shard-rebalancer.ts).
// Stream consumers with `autoscale` get their replicas changed by their lag, sampled
// beside the rounds (streams/autoscaler.ts).
import { ConfChangeType, StateRole } from '../raft/types.js'
import { NO_ROOM } from '../cells/runtime.js'
import type { Logger } from '../util/logger.js'
import { activeCells, placementBase } from './app-state.js'
import { cellRevision } from './cell-revision.js'
import type { AppState } from './app-state.js'
import type { AppGroups, HostedApp, InstanceState } from './app-groups.js'
import { copyKey, newId } from './app-groups.js'
import type { AppAnnouncer } from './announcer.js'
import type { AppTable } from './app-table.js'
import type { CloneService } from './clones.js'
import type { ReservationSync } from './reservation-sync.js'
import { itemsKey } from './reservation-sync.js'
import { bundleSources, memberChangeDue, nextMemberChange, noteMissing } from './group-members.js'
import { place } from './placement.js'
import { cellCost, defaultAccounting } from './placement-accounting.js'
import type { DesiredApp, Placement } from './placement-accounting.js'
import { planReconcile } from './reconcile.js'
import { PrimaryRecovery } from './primary-recovery.js'
import { ShardRebalancer } from './shard-rebalancer.js'
import { cloneCaughtUp, mayPromoteDirectly } from './clone-caught-up.js'
import { LeaseLapsedError, confirmLease } from './leader-lease.js'
import { supersededPrimaries } from './fencing.js'
import type { ReconcileStep, Role, RunningCopy } from './reconcile.js'
import { instanceAddress } from './types.js'
import type { Amount, NodeCapacity, PeerId } from './types.js'
import type { AnsweringPort, BundlePort, CapacityPort, CellRuntimePort, LeftPort, MessagingPort, RaftPort } from './ports.js'
import { Autoscaler, type PartitionInfoPort } from './streams/autoscaler.js'
import type { AutoscaleTiming } from './streams/autoscale.js'

export interface AppControllerComponents {
  self: string
  raft: RaftPort
  runtime: CellRuntimePort
  messaging: MessagingPort
  bundles: BundlePort
  clones: CloneService
  groups: AppGroups
  announcer: AppAnnouncer
  reservations: ReservationSync
  table: AppTable
  /** the live nodes of the capacity view, this node included */
  nodes: CapacityPort
  /** whether a peer answers on an open connection now (the failure detector): such a group member is not missing */
  answering?: AnsweringPort
  /** whether a peer said it is leaving the mesh (its group seats are given up at once) */
  left?: LeftPort
  /** a stream partition's `info` wherever it runs: without it, consumers do not autoscale */
  partitionInfo?: PartitionInfoPort
  logger: Logger
}

export interface AppControllerInit {
  /** ms between controller rounds (default 250) */
  controlInterval?: number
  /** ms a group member must be missing from the capacity view before the leader replaces it (default 10 s) */
  memberSuspicionMs?: number
  /** ms the leader waits (`recovering`) for a node that may hold a newer copy of an instance before it reports it `lost` (default 20 s) */
  recoveryWaitMs?: number
  /** most shards of an app moving at once to balance keyed cells (default 2; 0: shards move only on failover) */
  shardMoves?: number
  /** ms a node must have been live without a break before shards move to it (default 5 s) */
  shardSettleMs?: number
  /** windows of the autoscale of stream consumers (streams/autoscale.ts defaults) */
  autoscale?: Partial<AutoscaleTiming>
}

/**
 * a leader's round that found everything running as placed is repeated at most this often
 * while nothing it looks at changes (idle nodes: each round renews the leader's lease, a
 * signed round trip to the members); any change brings the next 250 ms tick's round
 */
const QUIET_ROUND_MS = 1000
/** a whole-app revert is announced this many times before the group dissolves */
const REVERT_ANNOUNCEMENTS = 3
/** a membership change proposed by a leader gets this long to apply before it is proposed again */
const CONF_CHANGE_RETRY_MS = 2000
/** a failed start is retried after this long, doubling per failure in a row, up to RETRY_MAX_MS */
const RETRY_FIRST_MS = 250
const RETRY_MAX_MS = 10_000
const INSTANCE = /^[^/]+\/([^#]+)#(\d+)$/
/** an instance waiting for its copies is looked at again after this long; a lost one after RECOVERY_LOST_RETRY_MS */
const RECOVERY_RETRY_MS = 1000
const RECOVERY_LOST_RETRY_MS = 5000
/** a member that could not fetch one of its app's bundles tries again after this long */
const BUNDLE_RETRY_MS = 5000

/** an update of a primary that failed: the cell's revision to roll back */
interface FailedUpdate { cell: string, revision: string, error: string }

/** whether every instance of `placement` runs as placed: its primary and clones started and transformed */
function settled (h: HostedApp, placement: Placement): boolean {
  for (const [cell, instances] of Object.entries(placement)) {
    for (let i = 0; i < instances.length; i++) {
      const inst = instances[i]
      if (inst.primary === null) return false
      const address = instanceAddress(h.app, cell, i)
      for (const [node, role] of [[inst.primary, 'primary'], ...inst.clones.map(c => [c, 'clone'])]) {
        const copy = h.running.get(copyKey(address, node))
        if (copy?.state !== 'transformed' || copy.role !== role) return false
      }
    }
  }
  return true
}

export class AppController {
  /** peer → since when it has been missing from the capacity view (suspicion before verdict) */
  private readonly missingSince = new Map<string, number>()
  private startedAt = 0
  private timer?: NodeJS.Timeout
  /** a round asked for before the next interval (roundSoon) */
  private soon?: NodeJS.Immediate
  private readonly recovery: PrimaryRecovery
  private readonly shards: ShardRebalancer
  private readonly autoscaler?: Autoscaler
  /** bundles of this node's groups it holds in its own store; a bundle not fetched yet → when to try again */
  private readonly heldBundles = new Set<string>()
  private readonly bundleRetryAt = new Map<string, number>()

  constructor (private readonly components: AppControllerComponents, private readonly init: AppControllerInit) {
    this.recovery = new PrimaryRecovery({
      self: components.self,
      clones: components.clones,
      logger: components.logger,
      alive: peer => components.nodes().some(n => n.id === peer && n.alive),
      checkLease: async h => { await confirmLease(components.raft, h.group, h.app) },
      startPrimary: async (address, node, code, from) => { await this.startPrimary(address, node, code.bundle, code.owner, code.limits, code.epoch, from) }
    }, { waitBoundMs: init.recoveryWaitMs })
    this.shards = new ShardRebalancer({ clones: components.clones, logger: components.logger }, { maxMoves: init.shardMoves, settleMs: init.shardSettleMs })
    if (components.partitionInfo !== undefined) {
      this.autoscaler = new Autoscaler({ partitionInfo: components.partitionInfo, propose: async (h, cmd) => await components.groups.propose(h, cmd), logger: components.logger }, init.autoscale)
    }
  }

  start (): void {
    this.startedAt = Date.now()
    this.timer = setInterval(() => { this.round() }, this.init.controlInterval ?? 250)
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    clearImmediate(this.soon)
    this.soon = undefined
  }

  /**
   * A round now, not at the next interval: a node just elected leader acts up to a whole
   * interval (250 ms) sooner in a failover (its round confirms the lease first, as always).
   */
  roundSoon (): void {
    if (this.soon !== undefined || this.timer === undefined) return
    this.soon = setImmediate(() => { this.soon = undefined; this.round() })
  }

  /**
   * A node went away (judged down, capacity advert expired or left) or connected again
   * (it may have restarted blank): as leader, this
   * node no longer counts on the copies it started there, so the next round starts them
   * again (where the placement still wants them) or places them elsewhere.
   */
  forgetPeer (peer: string): void {
    for (const h of this.components.groups.all()) {
      for (const [key, r] of h.running) if (r.node === peer) h.running.delete(key)
      h.quiet = undefined
    }
  }

  /**
   * The owner accepts losing what the missing holders of the app's `lost` instances (of
   * `cell`, or all) hold: they start at the next round from the newest copy found
   * (primary-recovery.ts acceptLoss). Only the leader knows which are lost (`leads`).
   */
  acceptLoss (h: HostedApp, cell?: string): string[] {
    if (!this.leads(h)) return []
    const accepted: string[] = []
    for (const r of h.running.values()) {
      if (r.state !== 'lost' || r.role !== 'primary' || (cell !== undefined && INSTANCE.exec(r.address)?.[1] !== cell)) continue
      if (!this.recovery.acceptLoss(h.group, r.address)) continue
      r.retryAt = 0
      h.quiet = undefined
      accepted.push(r.address)
    }
    return accepted
  }

  /** whether this node leads the app's group (as its Raft node believes) */
  leads (h: HostedApp): boolean {
    return this.components.raft.hasGroup(h.group) && this.components.raft.status(h.group).role === StateRole.Leader
  }

  /** The failure detector judged `peer` down: its copies are forgotten, and a recovery waiting on its inventory goes on without it. */
  peerDown (peer: string): void {
    this.forgetPeer(peer)
    this.recovery.peerDown(peer)
  }

  private round (): void {
    this.suspect()
    this.shards.observe(this.components.nodes(), Date.now())
    for (const h of this.components.groups.all()) {
      // autoscale samples in the background, beside the app's reconcile rounds
      if (this.autoscaler !== undefined && !h.dissolved && h.state !== undefined && this.components.raft.hasGroup(h.group)) {
        if (this.leads(h)) this.autoscaler.round(h, h.state)
        else this.autoscaler.forget(h.app)
      }
      if (h.busy || h.dissolved || !this.components.raft.hasGroup(h.group)) continue
      this.holdBundles(h)
      if (!this.leads(h)) {
        h.running.clear()
        this.revertSuperseded(h)
        continue
      }
      const inputs = this.roundInputs(h)
      if (h.quiet !== undefined && h.quiet.inputs === inputs && Date.now() - h.quiet.at < QUIET_ROUND_MS) continue
      h.busy = true
      this.leadRound(h, inputs).catch(err => { this.components.logger.warn(`app ${h.app}: ${(err as Error).message}`) }).finally(() => { h.busy = false })
    }
  }

  /**
   * A round of a group this node believes it leads: it acts only once a quorum confirmed
   * that (its lease, leader-lease.ts); a leader woken from a stall still believes it leads
   * until it hears the newer term, but finds no quorum to confirm it and does nothing.
   */
  private async leadRound (h: HostedApp, inputs: string): Promise<void> {
    const at = Date.now()
    h.quiet = undefined
    if (!await this.components.raft.renewLease(h.group)) {
      this.components.logger.debug(`app ${h.app}: no quorum confirmed this node's leadership: this round does nothing`)
      return
    }
    try {
      if (await this.reconcile(h)) h.quiet = { inputs, at }
    } catch (err) {
      if (!(err instanceof LeaseLapsedError)) throw err
      this.components.logger.debug(err.message)
    }
  }

  /**
   * What a leader's round of `h` looks at besides the clock: the group's term, members and
   * applied state, the copies it started, the live nodes and the members past their
   * verdict. A quiet round is repeated early only when this changed.
   */
  private roundInputs (h: HostedApp): string {
    const status = this.components.raft.status(h.group)
    const verdictAfter = this.verdictAfterMs()
    const now = Date.now()
    const running = [...h.running.values()].map(r => `${r.address}@${r.node}:${r.role}:${r.state}:${r.revision ?? ''}`).sort()
    const live = this.components.nodes().filter(n => n.alive).map(n => n.id).sort()
    const judged = status.members.filter(m => this.components.left?.(m) === true || now - (this.missingSince.get(m) ?? now) >= verdictAfter)
    return JSON.stringify([status.term, h.applied, status.members, running, live, judged, this.judgesMissing(now)])
  }

  /** ms a group member must be missing from the capacity view before the leader replaces it */
  private verdictAfterMs (): number {
    return this.init.memberSuspicionMs ?? 10_000
  }

  /** whether this node's capacity view has had time to fill since it started, so a missing member may be judged */
  private judgesMissing (now: number): boolean {
    return now - this.startedAt >= this.verdictAfterMs()
  }

  /**
   * A member reverts its own primaries the committed app state shows superseded (a node
   * woken from a stall learns it from the log before any leader tells it), keeping their
   * states as copies (clones.ts demote).
   */
  private revertSuperseded (h: HostedApp): void {
    const { clones, logger, self } = this.components
    if (h.state === undefined) return
    for (const address of supersededPrimaries(h.state, clones.localPrimaries(h.app), self)) {
      clones.demote(address, `the committed app state places it on another node in epoch ${h.state.epochs[address]}`).catch((err: Error) => { logger.warn(`app ${h.app}: cannot revert the superseded primary of ${address}: ${err.message}`) })
    }
  }

  /** Notes since when each group member has been missing (group-members.ts noteMissing). */
  private suspect (): void {
    const live = new Set(this.components.nodes().filter(n => n.alive).map(n => n.id))
    const members = new Set<string>()
    for (const h of this.components.groups.all()) {
      if (this.components.raft.hasGroup(h.group)) for (const m of this.components.raft.status(h.group).members) members.add(m)
    }
    noteMissing(this.missingSince, members, live, peer => this.components.answering?.(peer) === true, Date.now())
  }

  /**
   * The leader replaces a member that has been missing long enough: first removes it (the
   * live members keep their quorum), then adds the best live node not in the group, one
   * membership change at a time. The add follows as soon as the removal is applied: until
   * then the group has two voters and no room for another fault. A node that just started
   * waits the same time before judging a member missing, as its capacity view is still
   * filling, but fills a free seat at once (chaos seed 7: a leader restarted into a group
   * of two waited 10 s to add a member, and the app had no leader for 60 s when the other
   * member stalled meanwhile). True while a change is under way.
   */
  private async replaceDeadMembers (h: HostedApp): Promise<boolean> {
    const now = Date.now()
    const status = this.components.raft.status(h.group)
    if (!memberChangeDue(h.memberChange, status.members, now, CONF_CHANGE_RETRY_MS)) return true
    const next = nextMemberChange({ members: status.members, self: this.components.self, missingSince: this.missingSince, nodes: this.components.nodes(), now, verdictAfterMs: this.verdictAfterMs(), judgeMissing: this.judgesMissing(now), left: this.components.left })
    const change = next === undefined ? undefined : 'remove' in next ? { type: ConfChangeType.RemoveNode, node: next.remove } : { type: ConfChangeType.AddNode, node: next.add }
    if (change === undefined) return false
    const leftMesh = change.type === ConfChangeType.RemoveNode && this.components.left?.(change.node) === true
    await confirmLease(this.components.raft, h.group, h.app)
    try {
      this.components.raft.proposeConfChange(h.group, change)
      // only a change proposed waits for its retry: a refused one (another pending, or no
      // entry of this term committed yet) is tried again next round, not 2 s later
      h.memberChange = { node: change.node, add: change.type === ConfChangeType.AddNode, at: now }
      this.components.logger.info(`app ${h.app}: ${change.type === ConfChangeType.RemoveNode ? `removing ${leftMesh ? 'member' : 'lost member'}` : 'adding member'} ${change.node}${leftMesh ? ' (it is leaving the mesh)' : ''}`)
    } catch (err) {
      // another change is still pending: try again next round
      this.components.logger.debug(`app ${h.app}: membership change deferred: ${(err as Error).message}`)
    }
    return true
  }

  /** One round of the app's leader; true when it found everything running as placed and nothing to do. */
  private async reconcile (h: HostedApp): Promise<boolean> {
    const { groups, announcer, reservations } = this.components
    const state = h.state
    if (state === undefined) return false
    const changingMembers = await this.replaceDeadMembers(h)
    const term = this.components.raft.status(h.group).term
    if (state.dissolving) {
      if (announcer.due(h)) {
        // the room goes back first: once nodes see the app reverted they ignore its reservations
        reservations.announce(state.app, term, state.reservations)
        announcer.announce(h, state)
        if (++h.revertAnnouncements >= REVERT_ANNOUNCEMENTS) await groups.propose(h, { id: newId(), kind: 'dissolve' })
      }
      return false
    }
    const cells = activeCells(state)
    const desired: DesiredApp = { app: state.app, cells: {} }
    for (const cell of cells) desired.cells[cell] = { replicas: state.manifest.cells[cell].replicas, clones: state.manifest.cells[cell].clones, memory: state.manifest.cells[cell].memory }
    const current: Placement = {}
    for (const cell of cells) current[cell] = state.placement[cell] ?? []
    const reservedByOthers = reservations.reservedByOthers(state.app, this.runningUsage(h, desired))
    const nodes = this.components.nodes()
    const result = place({ desired, current, nodes, reservedByOthers, rebalance: { maxMoves: 0 } })
    const items = reservations.plan(state.app, state.reservations, desired, result.placement)
    if (JSON.stringify(result.placement) !== JSON.stringify(current) || cells.some(c => state.placement[c] === undefined) || itemsKey(items) !== itemsKey(state.reservations)) {
      await confirmLease(this.components.raft, h.group, h.app)
      const placed = await groups.propose(h, { id: newId(), kind: 'place', placement: result.placement, base: placementBase(state), reservations: items })
      // announced at once: new items must reach the other leaders while their `since` is fresh
      if (placed.ok && h.state !== undefined) {
        announcer.announce(h, h.state)
        reservations.announce(h.state.app, term, h.state.reservations)
      }
      return false
    }
    // a new leader names itself before its reservations: nodes count them only from the app's leader
    const known = this.components.table.get(state.app)
    if (known?.leader !== this.components.self || Number(known.term) !== term) announcer.announce(h, state)
    reservations.announce(state.app, term, state.reservations)
    const revisions: Record<string, string> = {}
    for (const cell of cells) revisions[cell] = cellRevision(state.manifest.cells[cell])
    const actual: RunningCopy[] = []
    for (const r of h.running.values()) {
      const m = INSTANCE.exec(r.address)
      if (m !== null && (r.state === 'starting' || r.state === 'transformed')) actual.push({ cell: m[1], index: Number(m[2]), role: r.role, node: r.node, revision: r.revision })
    }
    // a cell is transformed on a node only once this app's reservations there are effective
    // (a deferred instance keeps its old copies too); a warm clone runs no isolate until it
    // is promoted, so it is held at once and replies keep waiting for a clone
    const ready = reservations.readyNodes(state.app)
    const planned = planReconcile({ app: state.app, placement: state.placement, revisions }, actual)
    let quiet = false
    if (planned.length === 0 && result.pending.length === 0 && settled(h, current)) {
      // everything runs as placed: the moment to move a few shards, if a node holds too few
      const moved = await this.moveShards(h, state, { desired, current, nodes, reservedByOthers }, ready, term)
      if (moved) return false
      quiet = !changingMembers
    }
    const transforms = (s: ReconcileStep): boolean => s.kind !== 'stop' && !((s.kind === 'start' || s.kind === 'update') && s.role === 'clone')
    const deferred = new Set(planned.filter(s => transforms(s) && !ready.has(s.node)).map(s => s.address))
    const steps = planned.filter(s => s.kind === 'stop' ? !deferred.has(s.address) : !transforms(s) || ready.has(s.node))
    if (steps.length > 0 || announcer.due(h)) announcer.announce(h, state)
    const waves = [...new Set(steps.map(s => s.wave))].sort((a, b) => a - b)
    const now = Date.now()
    const backingOff = (step: ReconcileStep): boolean => (h.running.get(copyKey(step.address, step.node))?.retryAt ?? 0) > now
    for (const wave of waves) {
      // an earlier wave may have taken long: this node must still lead before the next
      await confirmLease(this.components.raft, h.group, h.app)
      const due = steps.filter(s => s.wave === wave && !backingOff(s))
      const failed = await Promise.all(due.map(async step => await this.execute(h, state, step)))
      // the wave may have taken long: a deposed leader's announcement could revert what its successor started
      await confirmLease(this.components.raft, h.group, h.app)
      announcer.announce(h, state)
      const rollbacks = new Map<string, FailedUpdate>()
      for (const f of failed) if (f !== undefined) rollbacks.set(f.cell, f)
      if (rollbacks.size > 0) {
        // the rollout of these cells stops here; the next round rolls their copies back
        for (const f of rollbacks.values()) {
          this.components.logger.warn(`app ${h.app}: rolling cell ${f.cell} back to its previous revision: ${f.error}`)
          await groups.propose(h, { id: newId(), kind: 'rollback', cell: f.cell, revision: f.revision, error: f.error })
        }
        return false
      }
      // a later wave must not overtake a step of this one that waits for its retry
      if (due.length < steps.filter(s => s.wave === wave).length) return false
    }
    return quiet
  }

  private async execute (h: HostedApp, state: AppState, step: ReconcileStep): Promise<FailedUpdate | undefined> {
    const { clones, logger } = this.components
    const cell = INSTANCE.exec(step.address)?.[1] as string
    const spec = state.manifest.cells[cell]
    const owner = Buffer.from(state.ownerKey, 'base64')
    const limits = { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }
    const revision = cellRevision(spec)
    // every start and promotion names its placement epoch: a node that knows a newer one refuses
    const epoch = state.epochs[step.address] ?? 0
    const before = h.running.get(copyKey(step.address, step.node))
    const mark = (node: string, role: Role, s: InstanceState): void => { h.running.set(copyKey(step.address, node), { address: step.address, node, role, revision, state: s }) }
    /** starts the primary on step.node from the newest copy recovery finds; false while it is not started yet (asked again next round; lost: less often) */
    const recover = async (): Promise<boolean> => {
      const outcome = await this.recovery.start(h, state, step.address, step.node, { bundle: spec.bundle as string, owner, limits, epoch, prepare: async () => { await this.fetchBundle(h, spec.bundle as string) } })
      if (outcome === 'started') return true
      h.running.set(copyKey(step.address, step.node), { address: step.address, node: step.node, role: 'primary', revision, state: outcome, reason: this.recovery.reason(h.group, step.address), retryAt: Date.now() + (outcome === 'lost' ? RECOVERY_LOST_RETRY_MS : RECOVERY_RETRY_MS) })
      return false
    }
    try {
      await confirmLease(this.components.raft, h.group, h.app)
      switch (step.kind) {
        case 'start':
        case 'update':
          mark(step.node, step.role, 'starting')
          if (step.role === 'clone') {
            await this.holdClone(h, state, step.address, step.node)
          } else if (step.kind === 'update') {
            await this.fetchBundle(h, spec.bundle as string)
            await confirmLease(this.components.raft, h.group, h.app)
            await this.startPrimary(step.address, step.node, spec.bundle as string, owner, limits, epoch)
          } else if (!await recover()) {
            // recovery decides first: while the only copies (and maybe the bundle) are away, it waits
            return undefined
          }
          mark(step.node, step.role, 'transformed')
          break
        case 'promote':
          if (await mayPromoteDirectly(clones, logger, h.app, step.address, state.holders?.[step.address] ?? [], state.epochs[step.address] ?? 0, step.node)) {
            await clones.promote(step.node, step.address, epoch)
          } else if (!await recover()) {
            // another clone may hold a newer state than this one, or this one none yet: recovery promotes or copies the newest
            return undefined
          }
          mark(step.node, 'primary', 'transformed')
          break
        case 'handover':
          // the new primary's clone holds every acknowledged state: it takes over, and the
          // old primary reverts itself once the announcement shows the new one running. A
          // clone that has not caught up (started lately, never sent a state) is not
          // promoted: recovery starts the new primary from the newest copy, the running one's
          if (await cloneCaughtUp(clones, logger, h.app, step.address, step.from, step.node)) {
            await confirmLease(this.components.raft, h.group, h.app)
            await clones.promote(step.node, step.address, epoch)
          } else if (!await recover()) {
            return undefined
          }
          h.running.delete(copyKey(step.address, step.from))
          mark(step.node, 'primary', 'transformed')
          break
        case 'stop':
          h.running.delete(copyKey(step.address, step.node))
          break
      }
      if (step.kind !== 'stop') logger.info(`app ${h.app}: ${step.kind} ${step.address} on ${step.node}${step.kind === 'start' || step.kind === 'update' ? ` as ${step.role}` : ''} (term ${this.components.raft.status(h.group).term})`)
    } catch (err) {
      if (err instanceof LeaseLapsedError) {
        // not a failure of the copy: this node may no longer lead; what it knew of the copy stays
        if (before === undefined) h.running.delete(copyKey(step.address, step.node))
        else h.running.set(copyKey(step.address, step.node), before)
        throw err
      }
      const error = (err as Error).message.split('\n')[0].slice(0, 300)
      logger.warn(`app ${h.app}: cannot ${step.kind} ${step.address} on ${step.node}: ${error}`)
      if (error.includes(NO_ROOM)) {
        // not a failure of the copy: the node is full; the next placement goes around it
        h.running.delete(copyKey(step.address, step.node))
        this.components.reservations.noteRefusal(h.app, step.node)
        return undefined
      }
      if (step.kind === 'update' && step.role === 'primary' && before?.state === 'transformed' && before.role === 'primary' && state.previous[cell] !== undefined) {
        // the cell host keeps the previous code and state when the new code fails to load
        h.running.set(copyKey(step.address, step.node), before)
        return { cell, revision, error }
      }
      if (step.kind !== 'stop') {
        // tried again next round at first, then less and less often (a cell whose code
        // always fails must not be transformed four times a second)
        const failures = (before?.state === 'failed' ? before.failures ?? 0 : 0) + 1
        const role = step.kind === 'start' || step.kind === 'update' ? step.role : 'primary'
        h.running.set(copyKey(step.address, step.node), { address: step.address, node: step.node, role, revision, state: 'failed', failures, retryAt: Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1)) })
      }
    }
    return undefined
  }

  /**
   * Commits the next shard moves of the settled app, if any: a placement that placement's
   * own rules keep as it is (room on every node, a clone apart from its primary). The
   * next rounds carry it out (reconcile.ts: a clone started on the target, or a handover).
   */
  private async moveShards (h: HostedApp, state: AppState, input: { desired: DesiredApp, current: Placement, nodes: NodeCapacity[], reservedByOthers: ReadonlyMap<PeerId, Amount> }, startable: ReadonlySet<PeerId>, term: number): Promise<boolean> {
    const next = await this.shards.next(h, state, input.current, Date.now(), startable)
    if (next === undefined || h.state !== state) return false
    const check = place({ ...input, current: next.placement, rebalance: { maxMoves: 0 } })
    if (check.actions.length > 0 || JSON.stringify(check.placement) !== JSON.stringify(next.placement)) {
      this.components.logger.debug(`app ${h.app}: shard moves ${next.moves.map(m => m.address).join(', ')} left out: ${check.actions.map(a => a.reason).join('; ') || 'placement differs'}`)
      return false
    }
    // a warm step's clone is held on its target before the placement names it: the old
    // clone goes at the commit, and the primary's first push after it finds the new one
    for (const m of next.moves) if (m.kind === 'warm') await this.holdClone(h, state, m.address, m.to)
    await confirmLease(this.components.raft, h.group, h.app)
    const { groups, announcer, reservations } = this.components
    const items = reservations.plan(state.app, state.reservations, input.desired, next.placement)
    const placed = await groups.propose(h, { id: newId(), kind: 'place', placement: next.placement, base: placementBase(state), reservations: items })
    if (!placed.ok || h.state === undefined) return false
    for (const m of next.moves) {
      this.components.logger.info(m.kind === 'warm'
        ? `app ${h.app}: moving shard ${m.address}: its clone goes from ${m.from} to ${m.to}, which takes the shard once it holds its state`
        : `app ${h.app}: moving shard ${m.address}: ${m.from} hands it over to its clone on ${m.to} (term ${term})`)
    }
    announcer.announce(h, h.state)
    reservations.announce(h.state.app, term, h.state.reservations)
    return true
  }

  /** Has `node` hold a clone of `address` (it fetches the bundle from the group's members). */
  private async holdClone (h: HostedApp, state: AppState, address: string, node: PeerId): Promise<void> {
    const [, cell, index] = INSTANCE.exec(address) as RegExpExecArray
    const spec = state.manifest.cells[cell]
    await this.fetchBundle(h, spec.bundle as string)
    await confirmLease(this.components.raft, h.group, h.app)
    // the clone follows the primary the committed placement names (a deposed one woken from a stall is refused)
    const primary = state.placement[cell]?.[Number(index)]?.primary ?? null
    const placed = primary === null ? undefined : { primary, epoch: state.epochs[address] ?? 0 }
    await this.components.clones.hold(node, address, spec.bundle as string, Buffer.from(state.ownerKey, 'base64'), { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }, placed)
  }

  /** Memory and cells the copies this leader knows to run hold on each node (placement-accounting's rule). */
  private runningUsage (h: HostedApp, desired: DesiredApp): Map<PeerId, Amount> {
    const usage = new Map<PeerId, Amount>()
    for (const r of h.running.values()) {
      const spec = desired.cells[INSTANCE.exec(r.address)?.[1] ?? '']
      if (r.state !== 'transformed' || spec === undefined) continue
      const u = usage.get(r.node) ?? { memory: defaultAccounting.hostFootprint, cells: 0 }
      u.memory += cellCost(defaultAccounting, spec.memory)
      u.cells += 1
      usage.set(r.node, u)
    }
    return usage
  }

  /** The leader holds the bundle before it asks others to fetch it from it. */
  /**
   * Every member keeps the bundles of its app's cells in its own store, so an app's code
   * survives as its group does: with `clones: 0`, the code was on the publishing node and
   * the primary's only, and after both were lost for good an instance the owner accepted
   * to start blank (`--accept-loss`) could not start anywhere (`cannot fetch bundle`).
   */
  private holdBundles (h: HostedApp): void {
    const state = h.state
    if (state === undefined) return
    const now = Date.now()
    for (const cell of activeCells(state)) {
      const hash = state.manifest.cells[cell].bundle
      if (hash === undefined || this.heldBundles.has(hash) || (this.bundleRetryAt.get(hash) ?? 0) > now) continue
      this.bundleRetryAt.set(hash, now + BUNDLE_RETRY_MS)
      this.fetchBundle(h, hash).then(() => {
        this.heldBundles.add(hash)
        this.bundleRetryAt.delete(hash)
      }, (err: Error) => { this.components.logger.debug(`app ${h.app}: cannot hold bundle ${hash} yet: ${err.message}`) })
    }
  }

  private async fetchBundle (h: HostedApp, bundle: string): Promise<void> {
    const live = new Set(this.components.nodes().filter(n => n.alive).map(n => n.id))
    await this.components.bundles.fetch(bundle, { peers: bundleSources(this.components.raft.status(h.group).members, this.components.self, live), signal: AbortSignal.timeout(20_000) })
  }

  private async startPrimary (address: string, node: string, bundleHash: string, owner: Uint8Array, limits: { memory: number, timeout: number, mailbox: number }, epoch: number, from?: { state: string, version: number, replies?: string }): Promise<void> {
    if (node === this.components.self) {
      const bundle = await this.components.bundles.fetch(bundleHash, { signal: AbortSignal.timeout(20_000) })
      // as a remote node would (app-stack.ts refuseTransform)
      const stale = this.components.clones.staleStep(address, epoch)
      if (stale !== undefined) throw new Error(stale)
      await this.components.runtime.transform(address, bundle, { owner, limits, replace: true, state: from?.state, version: from?.version, replies: from?.replies })
    } else {
      await this.components.messaging.transformRemote(node, { address, bundle: bundleHash, owner, limits, replace: true, state: from?.state, version: from?.version, replies: from?.replies, epoch }, { deadline: Date.now() + 30_000 })
    }
  }
}
