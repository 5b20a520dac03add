// A deterministic simulation of a whole mesh: 3–7 nodes on a virtual clock, a simulated
// network (loss, duplication, delay, reordering, symmetric, asymmetric and bridge
// partitions, stalls like SIGSTOP), node crashes and restarts from their Raft logs,
// whole-mesh restarts, a node that joins later, a node that leaves gracefully (it says
// so, its instances move away while it still answers, then it is gone for good), a node
// down for longer than the member verdict (the group replaces it, and adds it again once
// a seat is free) and a node that crashes and never comes back.
// Everything is drawn from seeded PRNGs, so a seed replays exactly.
//
// What runs is the real control plane's decision code: the Raft core (one group for the
// app, on the members pickGroupMembers chooses, changed as the leader's controller
// changes them: nextMemberChange over noteMissing, a node joining the group on its first
// raft message), the app state machine (applyCommand:
// publish, scale, placements with their epochs and stale-base refusal), placement
// (place) and the recovery decision before starting a primary the leader does not see
// running (planRecovery: newest copy of the holders, wait for missing ones), or the direct
// promotion of a clone where production makes it (promotionIsDirect). A client
// publishes the app, scales it, and sends adds to a ledger cell (one clone per instance,
// or two in half the seeds); the cells are deterministic stand-ins: a primary acknowledges
// an add only once one of its clones holds the new ledger, and a copy follows the newest
// epoch it has seen (fencing).
// After the faults heal, the app must converge to its manifest and keep every
// acknowledged add (mesh-checker.ts).
import { ConfChangeType, EntryType, StateRole } from '../../raft/types.js'
import type { Message } from '../../raft/types.js'
import { MemoryLogStorage, RawNode, createRand, decodeConfChange } from '../../raft/core/index.js'
import { ProposalDroppedError } from '../../raft/core/raft.js'
import { activeCells, applyCommand, decodeCommand, encodeCommand, placementBase } from '../app-state.js'
import type { AppCommand, AppState } from '../app-state.js'
import type { AppManifest } from '../manifest.js'
import { place } from '../placement.js'
import { leaseWaitUntil, nextWaitMark, planRecovery, promotionIsDirect } from '../recovery.js'
import type { Copy as HeldCopy, FencedAnswer, WaitMark } from '../recovery.js'
import type { DesiredApp, Placement } from '../placement-accounting.js'
import { memberChangeDue, nextMemberChange, noteMissing, pickGroupMembers } from '../group-members.js'
import type { ProposedMemberChange } from '../group-members.js'
import { instanceAddress } from '../types.js'
import type { NodeCapacity } from '../types.js'
import { NO_FAULTS, SimNetwork, partitionAtRandom } from '../../raft/sim/network.js'
import type { NetworkFaults } from '../../raft/sim/network.js'
import { leaseHolds } from '../fencing.js'
import { KEEP_DROPPED_MS } from '../kept-copies.js'
import { MeshChecker } from './mesh-checker.js'

export interface MeshSeedResult {
  seed: number
  violations: string[]
  nodes: number
  /** virtual ms simulated */
  virtualMs: number
  acknowledged: number
  /** acknowledged adds only the node gone for good held when it went (each one a violation) */
  lostWithNode: number
  sent: number
}

export const FAULT_KINDS = ['crash', 'mesh-restart', 'partition', 'stall', 'loss', 'scale', 'join', 'leave', 'outage', 'gone'] as const
export type FaultKind = typeof FAULT_KINDS[number]

export interface MeshSeedOptions {
  trace?: (line: string) => void
  /** leave out kinds of faults (to tell which ones a violation needs) */
  without?: FaultKind[]
}

const TICK_MS = 50
const ELECTION_TICK = 10
const CONTROL_EVERY = 5 // ticks: a controller round every 250 ms
const ADVERT_EVERY = 5
const SUSPECT_MS = 1500 // a node not heard from for this long is out of the capacity view
const ADD_TIMEOUT_MS = 1000
const LEASE_MS = ELECTION_TICK * TICK_MS // a primary's lease (fencing.ts leaseHolds): one election timeout
const CONVERGE_MS = 30_000
const RECOVERY_WAIT_MS = 20_000 // primary-recovery.ts's default bound on waiting for a holder
const LEAVE_BOUND_MS = 5000 // a leaving node stops after this long even if its instances did not all move (graceful-leave.ts's caller bound)
const LEAVE_SETTLE_MS = 500 // graceful-leave.ts LEAVE_SETTLE_MS: nothing placed on the leaver for this long before it stops
const MEMBER_VERDICT_MS = 10_000 // app-controller.ts verdictAfterMs: a member missing this long is replaced
const CONF_CHANGE_RETRY_MS = 2000 // app-controller.ts: a membership change not applied by then is proposed again
const OUTAGE_MS = [12_000, 20_000] // an outage outlasts the member verdict
const APP = 'ledger'
const CELL = 'book'
const GROUP = `${APP}~00000001`
const OWNER = 'owner'
const CONTRIBUTED = { cpu: 4, memory: 4 * 2 ** 30, cells: 3 }
/** the share of seeds whose cell has two clones per instance */
const CLONES_2_SHARE = 0.5

type Body =
  | { kind: 'raft', m: Message }
  | { kind: 'advert' }
  /** `from`: the newest copy found elsewhere, which the new primary starts from (recovery's `copy` plan) */
  | { kind: 'assign', address: string, epoch: number, index: number, primary: string, clones: string[], from?: { epoch: number, version: number, ledger: string[] }, servesFrom?: number }
  /** `askedAt`: the primary's clock when it sent this (echoed: its lease counts from there) */
  | { kind: 'replicate', address: string, epoch: number, version: number, ledger: string[], askedAt: number }
  | { kind: 'replicated', address: string, epoch: number, version: number, ok: boolean, askedAt: number }
  | { kind: 'add', op: string, address: string, sentAt: number }
  | { kind: 'added', op: string, ok: boolean }

interface Envelope {
  from: string
  to: string
  body: Body
}

interface Copy {
  role: 'primary' | 'clone'
  /** the epoch of the primary the data comes from (the newest epoch seen is in knownEpoch) */
  epoch: number
  ledger: string[]
  /** -1: a clone that has not received any state yet */
  version: number
  /** a primary's last version sent to its clones: versions never repeat */
  sent: number
  clones: string[]
  pending?: { op: string, sentAt: number, ledger: string[], version: number, deadline: number }
  /** a clone: when it last confirmed a state to a primary (that primary's lease may run until then + LEASE_MS) */
  confirmedAt?: number
  /** a new primary answers from then on: the lease of the primary before it has lapsed */
  answersFrom?: number
  /** no longer placed here: kept until then for a recovery's inventory (kept-copies.ts), taking no writes */
  keptUntil?: number
}

class MeshNode {
  /** the Raft log on disk: survives crashes */
  storage: MemoryLogStorage | undefined
  raw: RawNode | undefined
  state: AppState | undefined
  alive = true
  readonly lastHeard = new Map<string, number>()
  /** cell copies with the newest epoch seen of each instance: on disk (durability `disk`), they survive a crash */
  readonly copies = new Map<string, Copy>()
  readonly knownEpoch = new Map<string, number>()
  /** as leader (in memory): since when (virtual ms) it has been looking for the copies of an instance without a running primary */
  readonly recoverySince = new Map<string, WaitMark>()
  /** the commit index of the app state applied last */
  stateIndex = 0
  /** per instance, the commit index of the newest placement assigned to this node (in memory, as production's app table) */
  readonly assignedAt = new Map<string, number>()
  /** as leader: the last recovery outcome traced per instance (one line per change) */
  readonly recoveryTraced = new Map<string, string>()
  /** as leader (in memory, as app-controller.ts): since when each member has been missing, and the last membership change proposed */
  readonly missingSince = new Map<string, number>()
  memberChange: ProposedMemberChange | undefined
  /** when this node last started (its controller judges no member missing before its view had time to fill) */
  startedAt = 0

  constructor (readonly id: string) {}
}

export function runMeshSeed (seed: number, opts: MeshSeedOptions = {}): MeshSeedResult {
  const rand = createRand(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]
  const chance = (p: number): boolean => rand() < p
  const trace = opts.trace
  const size = 3 + Math.floor(rand() * 5)
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`)
  const faults: NetworkFaults = { loss: pick([0, 0.02, 0.1]), duplicate: pick([0, 0.02, 0.05]), maxDelay: pick([0, 1, 2]), longDelay: pick([0, 0.01, 0.03]) }
  const off = new Set(opts.without ?? [])
  if (off.has('loss')) Object.assign(faults, { loss: 0, duplicate: 0, longDelay: 0 })
  const pCrash = off.has('crash') ? 0 : pick([0, 0.004, 0.01])
  const pMeshRestart = off.has('mesh-restart') ? 0 : pick([0, 0.0005])
  const pPartition = off.has('partition') ? 0 : pick([0, 0.005, 0.015])
  const pStall = off.has('stall') ? 0 : pick([0, 0.004, 0.01])
  const pAdd = pick([0.1, 0.3])
  const pScale = off.has('scale') ? 0 : pick([0, 0.005])
  const chaosTicks = 300 + Math.floor(rand() * 400)
  // joins and graceful leaves draw from a PRNG of their own: a seed without them runs as it did before they existed
  const life = createRand(seed * 7907 + 3)
  const joiner = !off.has('join') && size >= 4 && life() < 0.5 ? ids[size - 1] : undefined
  const joinAt = Math.floor(50 + life() * chaosTicks * 0.6)
  const leaver = !off.has('leave') && life() < 0.5 ? ids[Math.floor(life() * (joiner === undefined ? size : size - 1))] : undefined
  const leaveAt = Math.floor(100 + life() * chaosTicks * 0.6)
  // one long fault in some seeds, from a PRNG of its own as well: a node down for longer
  // than the member verdict, or one gone for good (not beside a graceful leave: two of a
  // group's three members lost for good leave it no quorum, whatever the control plane does)
  const long = createRand(seed * 7883 + 7)
  const longRoll = long()
  const longAt = Math.floor(50 + long() * chaosTicks * 0.4)
  const longVictim = long()
  const outageMs = OUTAGE_MS[0] + Math.floor(long() * (OUTAGE_MS[1] - OUTAGE_MS[0]))
  const outageAt = !off.has('outage') && longRoll < 0.3 ? longAt : undefined
  const goneAt = !off.has('gone') && size >= 4 && leaver === undefined && longRoll >= 0.3 && longRoll < 0.6 ? longAt : undefined
  /** the node gone for good, once it is */
  let gone: string | undefined
  // two clones per instance in some seeds (a reply waits for either): a PRNG of its own too
  const cloneCount = createRand(seed * 7901 + 5)() < CLONES_2_SHARE ? 2 : 1
  if (joiner !== undefined) trace?.(`seed ${seed}: ${joiner} joins at t${joinAt * TICK_MS}`)
  if (leaver !== undefined) trace?.(`seed ${seed}: ${leaver} leaves gracefully from t${leaveAt * TICK_MS}`)
  if (outageAt !== undefined) trace?.(`seed ${seed}: a node is down for ${outageMs} ms from t${outageAt * TICK_MS}`)
  if (goneAt !== undefined) trace?.(`seed ${seed}: a node is gone for good from t${goneAt * TICK_MS}`)
  trace?.(`seed ${seed}: ${size} nodes, ${cloneCount} clone(s) per instance, faults ${JSON.stringify(faults)}, crash ${pCrash} mesh restart ${pMeshRestart} partition ${pPartition} stall ${pStall} add ${pAdd} scale ${pScale}, ${chaosTicks * TICK_MS} ms of faults`)

  const net = new SimNetwork<Envelope>(rand, faults, 4 * ELECTION_TICK)
  const checker = new MeshChecker()
  const nodes = new Map(ids.map(id => [id, new MeshNode(id)]))
  let tick = 0
  const now = (): number => tick * TICK_MS
  const restartAt = new Map<string, number>()
  const stallEnds = new Map<string, number>()
  let lastRestart = -Infinity
  /** nodes in the mesh: a joiner enters at joinAt, a leaver is gone for good once it left */
  const present = new Set(ids.filter(id => id !== joiner))
  /** since when (tick) a node has said it is leaving: no leader counts it alive any more */
  let leavingSince: number | undefined
  /** the leaver stopped at its bound, its instances not all moved: its owner starts it again once the faults heal (its disk kept its copies) */
  let leftAtBound = false
  /** since when (tick) the leaver's instances have all been elsewhere */
  let movedSince: number | undefined
  /** the group's first members (the publish bootstraps them); others join on their first raft message */
  let founders: string[] = []
  let lastPlacement = ''
  let lastPlacementIndex = 0
  let ownerClock = 0
  let opSeq = 0
  let sent = 0

  const send = (from: string, to: string, body: Body): void => { net.send({ from, to, body }, tick) }

  // ---- Raft members: persist, send, apply, advance (the Ready contract) ----
  const startMember = (n: MeshNode, joining = false): void => {
    if (!joining) n.startedAt = now()
    if (n.storage === undefined && !founders.includes(n.id) && !joining) return
    const fresh = n.storage === undefined
    n.storage ??= new MemoryLogStorage()
    n.state = undefined
    n.raw = new RawNode({ id: n.id, storage: n.storage, rand: createRand(seed * 7919 + ids.indexOf(n.id) + tick), peers: fresh && !joining ? founders : undefined, electionTick: ELECTION_TICK, heartbeatTick: 1, preVote: true, checkQuorum: true, applied: 0 })
  }
  const drain = (n: MeshNode): void => {
    const raw = n.raw
    if (raw === undefined || n.storage === undefined) return
    for (let guard = 0; raw.hasReady(); guard++) {
      if (guard > 10_000) throw new Error(`sim: ${n.id} never runs out of Ready`)
      const rd = raw.ready()
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot)
      n.storage.append(rd.entries)
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState)
      for (const m of rd.messages) send(n.id, m.to, { kind: 'raft', m })
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) raw.applyConfChange(decodeConfChange(e.data))
        if (e.type !== EntryType.Normal || e.data.length === 0) continue
        const { state } = applyCommand(n.state, decodeCommand(e.data))
        n.state = state
        n.stateIndex = e.index
        if (state === undefined) continue
        const placed = JSON.stringify({ placement: state.placement, epochs: state.epochs })
        if (placed !== lastPlacement && e.index > lastPlacementIndex) {
          lastPlacement = placed
          lastPlacementIndex = e.index
          trace?.(`t${now()} committed at ${e.index}: ${placed}`)
        }
        checker.onPlacement(state.placement, () => CONTRIBUTED.cells)
        for (const [address, epoch] of Object.entries(state.epochs)) {
          if (Number(address.split('#')[1]) >= state.manifest.cells[CELL].replicas) checker.forget(address, epoch)
        }
      }
      raw.advance()
    }
  }
  const propose = (n: MeshNode, cmd: AppCommand): void => {
    try {
      n.raw?.propose(encodeCommand(cmd))
      drain(n)
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err
    }
  }
  const isLeader = (n: MeshNode): boolean => n.alive && !net.stalled.has(n.id) && n.raw?.status().role === StateRole.Leader
  const leader = (): MeshNode | undefined => [...nodes.values()].filter(isLeader).sort((a, b) => b.raw!.status().term - a.raw!.status().term)[0]

  // ---- the capacity view: adverts heard recently ----
  const leaving = (id: string): boolean => id === leaver && leavingSince !== undefined
  const view = (n: MeshNode): NodeCapacity[] => ids.map(id => ({ id, contributed: CONTRIBUTED, alive: present.has(id) && !leaving(id) && (id === n.id || now() - (n.lastHeard.get(id) ?? -Infinity) <= SUSPECT_MS) }))

  // ---- the leader replaces a member that is leaving or has been missing for
  // MEMBER_VERDICT_MS (app-controller.ts replaceDeadMembers): one change at a time, the
  // removal first, then the best live node ----
  const changeMembers = (n: MeshNode): void => {
    const st = n.raw!.status()
    const live = new Set(view(n).filter(x => x.alive).map(x => x.id))
    noteMissing(n.missingSince, new Set(st.voters), live, () => false, now())
    if (!memberChangeDue(n.memberChange, st.voters, now(), CONF_CHANGE_RETRY_MS)) return
    const next = nextMemberChange({ members: st.voters, self: n.id, missingSince: n.missingSince, nodes: view(n), now: now(), verdictAfterMs: MEMBER_VERDICT_MS, judgeMissing: now() - n.startedAt >= MEMBER_VERDICT_MS, left: leaving(n.id) ? undefined : leaving })
    if (next === undefined) return
    const cc = 'remove' in next ? { type: ConfChangeType.RemoveNode, node: next.remove } : { type: ConfChangeType.AddNode, node: next.add }
    try {
      n.raw!.proposeConfChange(cc)
      n.memberChange = { node: cc.node, add: cc.type === ConfChangeType.AddNode, at: now() }
      trace?.(`t${now()} ${n.id} proposes ${'remove' in next ? `removing ${next.remove}` : `adding ${next.add}`} (members ${st.voters.join(',')})`)
      drain(n)
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err
    }
  }

  // ---- the leader's controller round: the real placement, proposed with its base ----
  const controlRound = (n: MeshNode): void => {
    const state = n.state
    if (state === undefined) return
    changeMembers(n)
    const cells = activeCells(state)
    const desired: DesiredApp = { app: state.app, cells: {} }
    for (const cell of cells) desired.cells[cell] = { replicas: state.manifest.cells[cell].replicas, clones: state.manifest.cells[cell].clones, memory: state.manifest.cells[cell].memory }
    const current: Placement = {}
    for (const cell of cells) current[cell] = state.placement[cell] ?? []
    const result = place({ desired, current, nodes: view(n), rebalance: { maxMoves: 0 } })
    if (JSON.stringify(result.placement) !== JSON.stringify(current) || cells.some(c => state.placement[c] === undefined)) {
      propose(n, { id: `place-${n.id}-${tick}`, kind: 'place', placement: result.placement, base: placementBase(state) })
      return
    }
    // announce the committed placement to the nodes it names (the leader's announcement)
    for (const cell of cells) {
      state.placement[cell].forEach((inst, i) => {
        const address = instanceAddress(state.app, cell, i)
        const epoch = state.epochs[address] ?? 0
        if (inst.primary === null) return
        const start = recover(n, state, address, epoch, inst.primary)
        if (start === 'hold') return
        // as app-controller.ts: the primary starts first, the announcement follows once it runs
        const to = start === 'running' ? ids : [inst.primary]
        for (const id of to) send(n.id, id, { kind: 'assign', address, epoch, index: n.stateIndex, primary: inst.primary, clones: inst.clones, ...(start === 'running' ? {} : { from: start.from, servesFrom: start.servesFrom }) })
      })
    }
  }

  // ---- recovery (primary-recovery.ts) before starting a primary the leader does not see
  // running: the real decision (planRecovery) over the inventories of the instance's holders.
  // Stand-in inventory: a node answers when it is up, not stalled and reachable both ways.
  // Returns 'running' when the primary runs, 'hold' while `recovering` / `lost`, else how the
  // target starts: from another node's copy, or (no `from`) from its own copy or blank ----
  const recover = (leaderNode: MeshNode, state: AppState, address: string, epoch: number, target: string): 'running' | 'hold' | { from?: Extract<Body, { kind: 'assign' }>['from'], servesFrom?: number } => {
    const own = nodes.get(target)!.copies.get(address)
    const sees = (id: string): boolean => id === leaderNode.id || (nodes.get(id)!.alive && !net.stalled.has(id) && !net.isBlocked(leaderNode.id, id) && !net.isBlocked(id, leaderNode.id))
    if (sees(target) && own?.role === 'primary' && own.epoch === epoch) {
      leaderNode.recoverySince.delete(address)
      leaderNode.recoveryTraced.delete(address)
      return 'running'
    }
    const holders = state.holders?.[address] ?? []
    // production's promote step (app-controller.ts): the target holds a clone, no primary runs
    // where the leader sees, and the placement says the clone's own copy is the newest
    // (promotionIsDirect): it is promoted without asking the holders
    const primaryRuns = [...nodes.values()].some(x => sees(x.id) && x.copies.get(address)?.role === 'primary')
    if (sees(target) && own?.role === 'clone' && own.keptUntil === undefined && !primaryRuns && promotionIsDirect(holders, epoch, target, own.version < 0 ? undefined : { version: own.version, epoch: own.epoch })) {
      if (leaderNode.recoveryTraced.get(address) !== 'direct') trace?.(`t${now()} ${leaderNode.id} promotes the clone of ${address} on ${target} in epoch ${epoch} (e${own.epoch}/v${own.version})`)
      leaderNode.recoverySince.delete(address)
      leaderNode.recoveryTraced.set(address, 'direct')
      return {}
    }
    const copies: HeldCopy[] = []
    /** as primary-recovery.ts: the holders that answered and what each said of its clone's last confirmation, and those no ask reached */
    const answers = new Map<string, FencedAnswer>()
    const notSent = new Set<string>()
    for (const id of new Set([target, ...holders.map(h => h.node)])) {
      if (!sees(id)) { notSent.add(id); continue }
      const confirmedAt = nodes.get(id)!.copies.get(address)?.confirmedAt
      answers.set(id, { at: now(), quietMs: confirmedAt === undefined ? Infinity : now() - confirmedAt })
      // the inventory request fences: a holder that answered refuses older epochs' states
      // from now on, so a deposed primary cannot renew its lease with an old clone
      fence(nodes.get(id)!, address, epoch)
      const c = nodes.get(id)!.copies.get(address)
      if (c !== undefined && c.version >= 0) copies.push({ node: id, version: c.version, epoch: c.epoch, running: c.role === 'primary' })
    }
    const answered = new Set(answers.keys())
    const mark = nextWaitMark(leaderNode.recoverySince.get(address), `${epoch} ${target}`, now())
    leaderNode.recoverySince.set(address, mark)
    let plan = planRecovery({ target, holders, answered, copies, waitedMs: now() - mark.since, waitBoundMs: RECOVERY_WAIT_MS })
    // the owner gives up what only the node gone for good held (stem restart --accept-loss),
    // once it is shown lost for that node alone
    if (plan.kind === 'lost' && gone !== undefined && plan.missing.every(m => m === gone)) {
      if (leaderNode.recoveryTraced.get(address) !== 'accepted') trace?.(`t${now()} the owner accepts the loss of what ${gone} alone held of ${address}`)
      leaderNode.recoveryTraced.set(address, 'accepted')
      plan = planRecovery({ target, holders, answered, copies, waitedMs: now() - mark.since, waitBoundMs: RECOVERY_WAIT_MS, acceptLoss: true })
    }
    const outcome = plan.kind === 'wait' || plan.kind === 'lost' ? `${plan.kind} for ${plan.missing.join(',')}` : plan.kind
    if (leaderNode.recoveryTraced.get(address) !== outcome) {
      leaderNode.recoveryTraced.set(address, outcome)
      trace?.(`t${now()} ${leaderNode.id} recovery of ${address} (epoch ${epoch}) on ${target}: ${outcome}${plan.kind === 'copy' || plan.kind === 'promote' ? ` from ${plan.copy.node} e${plan.copy.epoch}/v${plan.copy.version}` : ''}`)
    }
    if (plan.kind === 'wait' || plan.kind === 'lost') return 'hold'
    leaderNode.recoverySince.delete(address)
    // as primary-recovery.ts: the new primary serves once a lease another clone granted lapsed
    const until = leaseWaitUntil(plan, holders, target, epoch, answers, notSent, now(), LEASE_MS)
    const servesFrom = until > now() ? until : undefined
    if (plan.kind !== 'copy') return { servesFrom }
    const held = nodes.get(plan.copy.node)!.copies.get(address)!
    return { from: { epoch: held.epoch, version: held.version, ledger: held.ledger }, servesFrom }
  }

  // ---- the stand-in cells ----
  const fence = (n: MeshNode, address: string, epoch: number): void => {
    if (epoch > (n.knownEpoch.get(address) ?? 0)) n.knownEpoch.set(address, epoch)
  }
  const pushState = (n: MeshNode, address: string, c: Copy, ledger: string[], version: number): void => {
    for (const to of c.clones) send(n.id, to, { kind: 'replicate', address, epoch: c.epoch, version, ledger, askedAt: now() })
  }
  const onAssign = (n: MeshNode, b: Extract<Body, { kind: 'assign' }>): void => {
    if (b.epoch < (n.knownEpoch.get(b.address) ?? 0)) return
    // as production's app table takes only a newer announcement: a late or duplicated assign
    // of an older placement in the same epoch (a clone since moved) is ignored (seed 5167)
    if (b.index < (n.assignedAt.get(b.address) ?? 0)) return
    n.assignedAt.set(b.address, b.index)
    n.knownEpoch.set(b.address, b.epoch)
    const kept = n.copies.get(b.address)
    if (kept?.keptUntil !== undefined) {
      // placed here again: as primary it is promoted from the kept copy; as clone, held anew (clones.ts)
      if (b.primary === n.id) kept.keptUntil = undefined
      else if (b.clones.includes(n.id)) n.copies.delete(b.address)
    }
    const f = b.from
    const older = (c: Copy | undefined): boolean => c === undefined || c.version < 0 || (f !== undefined && (c.epoch < f.epoch || (c.epoch === f.epoch && c.version < f.version)))
    if (b.primary === n.id && f !== undefined && older(n.copies.get(b.address))) {
      // started from the newest copy the leader found on another node
      trace?.(`t${now()} ${n.id} starts ${b.address} as primary in epoch ${b.epoch} from a copy (e${f.epoch}/v${f.version}, ledger of ${f.ledger.length})`)
      n.copies.set(b.address, { role: 'clone', epoch: f.epoch, ledger: f.ledger, version: f.version, sent: f.version, clones: [] })
    }
    const c = n.copies.get(b.address)
    if (b.primary === n.id) {
      if (c === undefined || c.version < 0) {
        checker.onBlankStart(b.address, b.epoch, n.id)
        trace?.(`t${now()} ${n.id} starts ${b.address} blank as primary in epoch ${b.epoch}`)
        n.copies.set(b.address, { role: 'primary', epoch: b.epoch, ledger: [], version: 0, sent: 0, clones: b.clones, answersFrom: b.servesFrom })
      } else {
        if (c.role !== 'primary' || c.epoch !== b.epoch) {
          trace?.(`t${now()} ${n.id} is primary of ${b.address} in epoch ${b.epoch} (ledger of ${c.ledger.length})`)
          // a clone's promise: the primary it last confirmed may answer until its lease lapses
          // (and one another clone gave, when the leader says so)
          c.answersFrom = Math.max((c.confirmedAt ?? -Infinity) + LEASE_MS, b.servesFrom ?? -Infinity)
        }
        Object.assign(c, { role: 'primary', epoch: b.epoch, clones: b.clones })
      }
      // brings clones (new ones, or ones that missed writes) to the primary's ledger; a
      // write waiting for a clone is sent again, also to a clone assigned meanwhile
      const p = n.copies.get(b.address)!
      if (p.pending !== undefined) pushState(n, b.address, p, p.pending.ledger, p.pending.version)
      else {
        p.version = ++p.sent
        pushState(n, b.address, p, p.ledger, p.version)
      }
    } else if (b.clones.includes(n.id)) {
      if (c === undefined) n.copies.set(b.address, { role: 'clone', epoch: b.epoch, ledger: [], version: -1, sent: -1, clones: [] })
      // a copy keeps the epoch its data comes from: a write of the new epoch is newer than any of an older one
      else Object.assign(c, { role: 'clone', clones: [], pending: undefined })
    } else if (c !== undefined && c.keptUntil === undefined) {
      if (c.version < 0) {
        trace?.(`t${now()} ${n.id} drops its empty copy of ${b.address} (epoch ${b.epoch} places it elsewhere)`)
        n.copies.delete(b.address)
      } else {
        // make before break: the new primary's clones may not hold its state yet (seed 6415)
        trace?.(`t${now()} ${n.id} keeps its copy of ${b.address} (e${c.epoch}/v${c.version}) for ${KEEP_DROPPED_MS} ms (epoch ${b.epoch} places it elsewhere)`)
        Object.assign(c, { role: 'clone', clones: [], pending: undefined, keptUntil: now() + KEEP_DROPPED_MS })
      }
    }
  }
  const onReplicate = (n: MeshNode, from: string, b: Extract<Body, { kind: 'replicate' }>): void => {
    if (n.copies.get(b.address)?.keptUntil !== undefined) {
      // a kept copy is no clone: it takes no writes and confirms nothing
      send(n.id, from, { kind: 'replicated', address: b.address, epoch: b.epoch, version: b.version, ok: false, askedAt: b.askedAt })
      return
    }
    const known = n.knownEpoch.get(b.address) ?? 0
    let ok = b.epoch >= known
    if (ok) {
      n.knownEpoch.set(b.address, b.epoch)
      const c = n.copies.get(b.address)
      // stored only if newer; acknowledged only if held (an older write arriving late is refused)
      if (c?.role === 'primary' && c.epoch >= b.epoch) ok = false
      else if (c === undefined || c.epoch < b.epoch || (c.epoch === b.epoch && b.version > c.version)) n.copies.set(b.address, { role: 'clone', epoch: b.epoch, ledger: b.ledger, version: b.version, sent: b.version, clones: [] })
      else ok = c.epoch === b.epoch && c.version === b.version
      const held = n.copies.get(b.address)
      if (ok && held !== undefined) held.confirmedAt = now()
    }
    send(n.id, from, { kind: 'replicated', address: b.address, epoch: b.epoch, version: b.version, ok, askedAt: b.askedAt })
  }
  const onReplicated = (n: MeshNode, b: Extract<Body, { kind: 'replicated' }>): void => {
    const c = n.copies.get(b.address)
    const p = c?.pending
    if (c === undefined || p === undefined || c.role !== 'primary' || c.epoch !== b.epoch || p.version !== b.version) return
    if (c.epoch < (n.knownEpoch.get(b.address) ?? 0)) {
      c.pending = undefined
      return
    }
    if (!b.ok) {
      c.pending = undefined
      return
    }
    if (!leaseHolds(b.askedAt, now(), LEASE_MS)) {
      // the confirmation is too old to answer on (this primary was stalled or cut off since
      // it asked): ask again; a clone promoted meanwhile refuses
      trace?.(`t${now()} ${n.id} re-confirms ${b.address} v${p.version} in epoch ${c.epoch}: its lease lapsed`)
      p.deadline = Math.max(p.deadline, now() + ADD_TIMEOUT_MS)
      pushState(n, b.address, c, p.ledger, p.version)
      return
    }
    c.ledger = p.ledger
    c.version = p.version
    c.pending = undefined
    checker.onAck(b.address, c.epoch, n.id, p.op, c.ledger, p.sentAt, now())
    send(n.id, 'client', { kind: 'added', op: p.op, ok: true })
  }
  const onAdd = (n: MeshNode, from: string, b: Extract<Body, { kind: 'add' }>): void => {
    const c = n.copies.get(b.address)
    // a primary that learned of a newer epoch is deposed; a new one waits out the old one's lease
    const superseded = c !== undefined && c.epoch < (n.knownEpoch.get(b.address) ?? 0)
    if (c === undefined || c.role !== 'primary' || superseded || now() < (c.answersFrom ?? -Infinity) || (c.pending !== undefined && c.pending.deadline > now())) {
      send(n.id, from, { kind: 'added', op: b.op, ok: false })
      return
    }
    const ledger = [...c.ledger, b.op]
    const version = ++c.sent
    if (c.clones.length === 0) {
      c.ledger = ledger
      c.version = version
      checker.onAck(b.address, c.epoch, n.id, b.op, ledger, b.sentAt, now())
      send(n.id, from, { kind: 'added', op: b.op, ok: true })
      return
    }
    c.pending = { op: b.op, sentAt: b.sentAt, ledger, version, deadline: now() + ADD_TIMEOUT_MS }
    pushState(n, b.address, c, ledger, version)
  }

  const deliver = (e: Envelope): void => {
    if (e.to === 'client') return
    const n = nodes.get(e.to)
    if (n === undefined || !n.alive) return
    n.lastHeard.set(e.from, now())
    const b = e.body
    switch (b.kind) {
      case 'raft':
        // as app-groups.ts joinOnFirstMessage: a node the group added hosts it from its first message
        if (n.raw === undefined && n.storage === undefined) {
          trace?.(`t${now()} ${n.id} joins the raft group (first message from ${e.from})`)
          startMember(n, true)
        }
        if (n.raw === undefined) return
        n.raw.step(b.m)
        drain(n)
        return
      case 'advert': return
      case 'assign': onAssign(n, b); return
      case 'replicate': onReplicate(n, e.from, b); return
      case 'replicated': onReplicated(n, b); return
      case 'add': onAdd(n, e.from, b)
    }
  }

  const crash = (n: MeshNode): void => {
    trace?.(`t${now()} crash ${n.id}`)
    n.alive = false
    n.raw = undefined
    n.state = undefined
    for (const c of n.copies.values()) c.pending = undefined
    n.lastHeard.clear()
    n.recoverySince.clear()
    n.recoveryTraced.clear()
    n.assignedAt.clear()
    n.missingSince.clear()
    n.memberChange = undefined
  }
  const restart = (n: MeshNode): void => {
    if (!present.has(n.id)) return
    trace?.(`t${now()} restart ${n.id}`)
    lastRestart = tick
    n.alive = true
    startMember(n)
    drain(n)
  }

  const manifest = (replicas: number): AppManifest => ({ app: APP, routes: [], cells: { [CELL]: { code: './book.js', replicas, clones: cloneCount, memory: 32 * 2 ** 20, timeout: 1000, mailbox: 100, bundle: 'b'.repeat(64) } } })

  const clientAdd = (): void => {
    const l = leader()
    // the client's directory: the newest placement it learned (any live member's state)
    const known = [...nodes.values()].filter(n => n.alive && n.state !== undefined).sort((a, b) => b.raw!.status().commit - a.raw!.status().commit)[0]?.state ?? l?.state
    const placed = known?.placement[CELL]
    if (placed === undefined || placed.length === 0) return
    const index = Math.floor(rand() * placed.length)
    const primary = placed[index].primary
    if (primary === null) return
    const op = `op${++opSeq}`
    sent++
    send('client', primary, { kind: 'add', op, address: instanceAddress(APP, CELL, index), sentAt: now() })
  }

  const partition = (): void => {
    const what = partitionAtRandom(net, ids, rand)
    trace?.(`t${now()} ${what}`)
  }

  // the owner retries the publish until it is applied (a proposal can be dropped)
  const replicas = 1 + Math.floor(rand() * 2)
  const published = (): boolean => [...nodes.values()].some(n => n.state !== undefined)
  const publish = (): void => {
    const l = leader()
    if (l === undefined || tick % ELECTION_TICK !== 0) return
    trace?.(`t${now()} the owner publishes through ${l.id}`)
    propose(l, { id: `publish-${tick}`, kind: 'publish', owner: OWNER, ownerKey: OWNER, at: ++ownerClock, manifest: manifest(replicas) })
  }

  // ---- a node joins: it starts advertising; placement may use it from then on ----
  const join = (n: MeshNode): void => {
    trace?.(`t${now()} ${n.id} joins`)
    present.add(n.id)
    n.alive = true
    n.startedAt = now()
  }
  // ---- graceful leave (graceful-leave.ts): say 'leaving', hand over the leadership, keep
  // answering while the leader moves the instances away, then stop for good ----
  const leaveStep = (n: MeshNode): void => {
    if (leavingSince === undefined) {
      leavingSince = tick
      trace?.(`t${now()} ${n.id} says it is leaving`)
    }
    if (!n.alive) return
    const st = n.raw?.status()
    if (st?.role === StateRole.Leader) {
      const to = st.voters.filter(m => m !== n.id && nodes.get(m)!.alive).sort()[0]
      if (to !== undefined && tick % ELECTION_TICK === 0) { n.raw!.transferLeader(to); drain(n) }
    }
    // done once a leader's committed placement has named it nowhere, with every instance
    // running its placed primary in the placed epoch, and it applied its removal from the
    // group, for LEAVE_SETTLE_MS (graceful-leave.ts waits for the announcements; a
    // placement proposed before the leader heard it was leaving may still commit, naming
    // it), or at the bound
    const state = leader()?.state
    const moved = state !== undefined && Object.entries(state.placement).every(([cell, insts]) => insts.every((i, index) => {
      const address = instanceAddress(state.app, cell, index)
      const running = i.primary === null ? undefined : nodes.get(i.primary)!.copies.get(address)
      return i.primary !== n.id && !i.clones.includes(n.id) && running?.role === 'primary' && running.epoch === (state.epochs[address] ?? 0)
    }))
    const leads = st?.role === StateRole.Leader
    // graceful-leave.ts: unless no other member stays
    const member = st !== undefined && st.voters.includes(n.id) && st.voters.some(m => m !== n.id && present.has(m))
    movedSince = moved && !leads && !member ? movedSince ?? tick : undefined
    const settled = movedSince !== undefined && (tick - movedSince) * TICK_MS >= LEAVE_SETTLE_MS
    if (settled || (tick - leavingSince) * TICK_MS >= LEAVE_BOUND_MS) {
      leftAtBound = !settled
      trace?.(`t${now()} ${n.id} left the mesh${leftAtBound ? ' (bound reached)' : ''}`)
      crash(n)
      present.delete(n.id)
      restartAt.delete(n.id)
    }
  }

  let longDone = false
  /**
   * A node goes for good only while its group is whole: every voter up, reachable and not
   * stalled, and caught up with the leader (its membership and commit). A member removed
   * while only cut off, then another lost for good before the group grew back, leaves a
   * group with no quorum, for good (seed 6458; 24291: the survivor had not learned that
   * the add of the new member was committed): two faults at once, beyond what a group of
   * three tolerates.
   */
  const steady = (): boolean => {
    const l = leader()
    const st = l?.raw?.status()
    if (st === undefined) return false
    const voters = st.voters
    const caughtUp = (id: string): boolean => {
      const v = nodes.get(id)!.raw?.status()
      return v !== undefined && v.commit === st.commit && v.voters.slice().sort().join() === voters.slice().sort().join()
    }
    const up = (id: string): boolean => nodes.get(id)!.alive && !net.stalled.has(id)
    // and no membership change on its way: one applied after the loss (removing a member
    // that was only cut off) left two voters, one of them gone for good (seed 41812)
    return voters.length >= Math.min(3, present.size) && st.lastIndex === st.commit && voters.every(id => up(id) && caughtUp(id)) &&
      voters.every(a => voters.every(b => a === b || !net.isBlocked(a, b)))
  }

  const step = (faulty: boolean): void => {
    if (!published()) publish()
    if (joiner !== undefined && !present.has(joiner) && (tick >= joinAt || !faulty)) join(nodes.get(joiner)!)
    if (leaver !== undefined && present.has(leaver) && tick >= leaveAt && faulty) leaveStep(nodes.get(leaver)!)
    if (leaver !== undefined && !faulty && (leftAtBound || (leavingSince !== undefined && present.has(leaver)))) {
      // after the faults: a leave cut short at its bound comes back as a plain member (stem start
      // again, with its disk), and one still in progress is called off
      leavingSince = undefined
      if (leftAtBound) {
        leftAtBound = false
        present.add(leaver)
        restartAt.set(leaver, tick)
      }
    }
    for (const [id, at] of restartAt) if (at <= tick) { restartAt.delete(id); restart(nodes.get(id)!) }
    for (const [id, at] of stallEnds) {
      if (at <= tick) {
        stallEnds.delete(id)
        trace?.(`t${now()} resume ${id}`)
        for (const e of net.resume(id)) deliver(e)
      }
    }
    if (faulty && !longDone && (outageAt ?? goneAt ?? Infinity) <= tick && restartAt.size === 0 && (goneAt === undefined || steady())) {
      longDone = true
      // up, and neither the joiner nor the leaver (they have lives of their own)
      const up = [...nodes.values()].filter(x => x.alive && present.has(x.id) && x.id !== joiner && x.id !== leaver)
      const n = up[Math.floor(longVictim * up.length)]
      if (n !== undefined && outageAt !== undefined) {
        trace?.(`t${now()} ${n.id} goes down for ${outageMs} ms`)
        crash(n)
        restartAt.set(n.id, tick + Math.floor(outageMs / TICK_MS))
      } else if (n !== undefined) {
        trace?.(`t${now()} ${n.id} is gone for good`)
        // what only its copies held is lost with it: a violation (each acknowledged add is on two nodes)
        for (const address of checker.addresses()) {
          checker.onGone(address, n.id, [...nodes.values()].filter(x => x !== n && present.has(x.id)).map(x => x.copies.get(address)?.ledger ?? []))
        }
        crash(n)
        present.delete(n.id)
        gone = n.id
      }
    }
    if (faulty) {
      // one node down at a time, and back long enough for the others to see it (two
      // failures overlapping in a leader's view are another fault: stalls with crashes)
      if (chance(pCrash) && restartAt.size === 0 && tick - lastRestart > 2 * SUSPECT_MS / TICK_MS) {
        const n = pick([...nodes.values()].filter(x => x.alive))
        crash(n)
        restartAt.set(n.id, tick + 1 + Math.floor(rand() * 6 * ELECTION_TICK))
      }
      if (chance(pMeshRestart) && restartAt.size === 0) {
        // a whole-mesh restart (a power cut): every node down, back within 3 s
        trace?.(`t${now()} whole-mesh restart`)
        for (const n of nodes.values()) {
          if (!present.has(n.id)) continue
          crash(n)
          restartAt.set(n.id, tick + 1 + Math.floor(rand() * 60))
        }
      }
      const up = [...nodes.values()].filter(x => x.alive)
      if (chance(pStall) && stallEnds.size === 0 && up.length > 0) {
        const n = pick(up)
        net.stalled.add(n.id)
        stallEnds.set(n.id, tick + 1 + Math.floor(rand() * 4 * ELECTION_TICK))
        trace?.(`t${now()} stall ${n.id}`)
      }
      if (chance(pPartition)) partition()
      if (chance(pAdd) && published()) clientAdd()
      if (chance(pScale)) {
        const l = leader()
        if (l !== undefined) propose(l, { id: `scale-${tick}`, kind: 'scale', owner: OWNER, ownerKey: OWNER, at: ++ownerClock, cell: CELL, replicas: 1 + Math.floor(rand() * 2) })
      }
    }
    for (const n of nodes.values()) {
      if (!n.alive || net.stalled.has(n.id)) continue
      if (tick % ADVERT_EVERY === 0) for (const to of ids) if (to !== n.id) send(n.id, to, { kind: 'advert' })
      if (n.raw !== undefined) {
        n.raw.tick()
        drain(n)
      }
      for (const c of n.copies.values()) if (c.pending !== undefined && c.pending.deadline <= now()) c.pending = undefined
      for (const [address, c] of n.copies) {
        if (c.keptUntil === undefined || c.keptUntil > now()) continue
        trace?.(`t${now()} ${n.id} drops its kept copy of ${address}`)
        n.copies.delete(address)
      }
      if (tick % CONTROL_EVERY === 0 && isLeader(n)) controlRound(n)
    }
    // answers sent while delivering are due this tick too
    for (let rounds = 0, due = net.takeDue(tick); due.length > 0; due = net.takeDue(tick)) {
      if (++rounds > 10_000) throw new Error(`sim: message storm at ${now()} ms`)
      for (const e of due) deliver(e)
    }
    tick++
  }

  // ---- publish: the node the owner talks to forms the group and proposes the manifest ----
  founders = pickGroupMembers(view(nodes.get(ids[0])!).map(n => ({ ...n, alive: present.has(n.id) })), 3, [ids[0]])
  if (joiner !== undefined) nodes.get(joiner)!.alive = false
  for (const n of nodes.values()) {
    startMember(n)
    drain(n) // the bootstrap is on disk before anything else happens
  }
  trace?.(`group ${GROUP} on ${founders.join(',')}`)
  while (tick < chaosTicks) step(true)

  // ---- heal: every node back, no faults; the app must converge and keep every acknowledged add ----
  net.heal()
  net.faults = NO_FAULTS
  for (const [id] of stallEnds) stallEnds.set(id, tick)
  for (const [id] of restartAt) restartAt.set(id, tick)
  trace?.(`t${now()} healed`)
  const deadline = tick + CONVERGE_MS / TICK_MS
  let converged = false
  while (tick < deadline && !converged) {
    step(false)
    converged = convergedNow()
  }
  if (!converged) checker.violations.push(`convergence: the app did not converge within ${CONVERGE_MS} ms after healing (${describe()})`)
  else {
    const state = leader()!.state!
    for (const address of checker.addresses()) {
      const inst = state.placement[CELL]?.[Number(address.split('#')[1])]
      checker.checkFinal(address, inst?.primary == null ? undefined : nodes.get(inst.primary)!.copies.get(address)?.ledger)
    }
  }
  return { seed, violations: checker.violations, nodes: size, virtualMs: now(), acknowledged: checker.acknowledged, lostWithNode: checker.lostWithNode, sent }

  function convergedNow (): boolean {
    const l = leader()
    const state = l?.state
    if (state === undefined) return false
    const placed = state.placement[CELL]
    if (placed === undefined || placed.length !== state.manifest.cells[CELL].replicas) return false
    return placed.every((inst, i) => {
      const address = instanceAddress(APP, CELL, i)
      const epoch = state.epochs[address] ?? 0
      const p = inst.primary === null ? undefined : nodes.get(inst.primary)!.copies.get(address)
      return p?.role === 'primary' && p.epoch === epoch && inst.clones.every(c => {
        const copy = nodes.get(c)!.copies.get(address)
        return copy?.epoch === p.epoch && copy.version === p.version
      })
    })
  }

  function describe (): string {
    const l = leader()
    const raft = [...nodes.values()].filter(n => n.raw !== undefined).map(n => { const st = n.raw!.status(); return `${n.id}:${st.role}/t${st.term}/c${st.commit}/l${st.lastIndex}` }).join(' ')
    return `raft ${raft}, leader ${l?.id ?? 'none'}, placement ${JSON.stringify(l?.state?.placement ?? null)}, epochs ${JSON.stringify(l?.state?.epochs ?? null)}, copies ${[...nodes.values()].map(n => `${n.id}:${[...n.copies].map(([a, c]) => `${a}/${c.role}/e${c.epoch}/v${c.version}`).join(';')}`).join(' ')}`
  }
}
