// Placement: where each instance of an app's cells runs (its primary) and where its warm
// clones wait. A pure function of the desired app, the current placement and the
// capacity view, run by the app's leader on every change; its actions are what the
// leader's controller executes (see planReconcile for their order).
//
// Rules, in order:
//  1. Keep what is valid. An instance whose primary's node is gone promotes its clone on
//     the healthiest node (most free fraction, then peer id). Surplus instances and clones
//     (scaled down) are dropped; so are clones sharing a node with their instance.
//  2. Never oversubscribe: a node holds this app's cells only up to its contribution minus
//     what other apps reserved on it (placement-accounting.ts counts each cell with memory
//     headroom plus a cell-host footprint). A node over that (its owner lowered it, another
//     app's reservation won, a cell's memory limit grew) sheds clones first, then primaries
//     — a primary with a clone elsewhere hands over to it — and the shed ones are re-placed.
//  3. Missing primaries, then missing clones, go to the best node: primaries spread across
//     nodes and failure zones (anti-affinity), clones never on their primary's node nor with
//     another clone of the same instance and preferably in another zone; among equals the
//     node left with the largest free fraction; ties by peer id. Nothing fits → `pending`
//     with the reason.
//  4. Rebalance only for a clear gain: move at most `maxMoves` instances per round, each
//     from the most loaded node to a less loaded one when their loads differ by more than
//     `threshold` and the move narrows the gap without worsening anti-affinity. So a node
//     joining moves a few cells over a few rounds, not everything at once.
// Deterministic: the same inputs give the same output whatever their order.
import { formatSize } from '../util/units.js'
import { cellCost, capacityFor, defaultAccounting } from './placement-accounting.js'
import type { AccountingRule, DesiredApp, InstancePlacement, Placement } from './placement-accounting.js'
import { instanceAddress } from './types.js'
import type { Amount, NodeCapacity, PeerId } from './types.js'

export interface RebalanceOptions {
  /** minimum difference in load (0..1) between two nodes that justifies a move */
  threshold: number
  /** most moves per placement round */
  maxMoves: number
}

export const defaultRebalance: RebalanceOptions = { threshold: 0.25, maxMoves: 1 }

export interface PlacementInput {
  desired: DesiredApp
  current: Placement
  nodes: NodeCapacity[]
  /** memory and cells other apps reserved per node (see reservations.ts) */
  reservedByOthers?: ReadonlyMap<PeerId, Amount>
  accounting?: AccountingRule
  rebalance?: Partial<RebalanceOptions>
}

export type PlacementAction =
  | { kind: 'place-primary' | 'place-clone' | 'drop-primary' | 'drop-clone', address: string, node: PeerId, reason: string }
  /** a clone on `node` becomes the primary; the old primary on `from` (if any, and alive) stops */
  | { kind: 'promote', address: string, node: PeerId, from: PeerId | null, reason: string }
  | { kind: 'move-primary' | 'move-clone', address: string, from: PeerId, node: PeerId, reason: string }

export interface PendingInstance {
  address: string
  role: 'primary' | 'clone'
  reason: string
}

export interface PlacementResult {
  placement: Placement
  actions: PlacementAction[]
  pending: PendingInstance[]
}

interface Slot { cell: string, index: number, role: 'primary' | 'clone' }

/** The working state of one placement run: the placement and what it uses of each node. */
class Board {
  readonly live = new Map<PeerId, NodeCapacity>()
  readonly ids: PeerId[]
  readonly cap = new Map<PeerId, Amount>()
  readonly others = new Map<PeerId, Amount>()
  /** this app's cells per node: memory (without host footprint) and count */
  readonly used = new Map<PeerId, Amount>()
  readonly work: Placement = {}
  /** cell → node or zone → count, kept in step with `work` for cheap anti-affinity scores */
  private readonly primaries = new Map<string, Map<string, number>>()
  private readonly primaryZones = new Map<string, Map<string, number>>()
  private readonly copies = new Map<string, Map<string, number>>()

  constructor (readonly app: string, nodes: NodeCapacity[], reserved: ReadonlyMap<PeerId, Amount> | undefined,
    readonly rule: AccountingRule, readonly costs: Map<string, number>) {
    for (const n of nodes) if (n.alive && !this.live.has(n.id)) this.live.set(n.id, n)
    this.ids = [...this.live.keys()].sort()
    for (const id of this.ids) {
      const r = reserved?.get(id)
      this.others.set(id, { memory: r?.memory ?? 0, cells: r?.cells ?? 0 })
      this.cap.set(id, capacityFor(this.live.get(id) as NodeCapacity, r))
      this.used.set(id, { memory: 0, cells: 0 })
    }
  }

  zone (id: PeerId): string { return this.live.get(id)?.zone ?? `node:${id}` }

  /** memory and cells this app holds on the node, host footprint included */
  usage (id: PeerId, extraCost = 0, extraCells = 0): Amount {
    const u = this.used.get(id) as Amount
    const cells = u.cells + extraCells
    return { memory: cells > 0 ? u.memory + extraCost + this.rule.hostFootprint : 0, cells }
  }

  fits (id: PeerId, cost: number): boolean {
    const after = this.usage(id, cost, 1)
    const cap = this.cap.get(id) as Amount
    return after.memory <= cap.memory && after.cells <= cap.cells
  }

  over (id: PeerId): boolean {
    const u = this.usage(id)
    const cap = this.cap.get(id) as Amount
    return u.cells > 0 && (u.memory > cap.memory || u.cells > cap.cells)
  }

  /** smallest of the memory and cell free fractions of the node's contribution, after a change */
  freeFraction (id: PeerId, extraCost = 0, extraCells = 0): number {
    const n = this.live.get(id) as NodeCapacity
    const o = this.others.get(id) as Amount
    const u = this.usage(id, extraCost, extraCells)
    if (n.contributed.memory <= 0 || n.contributed.cells <= 0) return -Infinity
    return Math.min((n.contributed.memory - o.memory - u.memory) / n.contributed.memory,
      (n.contributed.cells - o.cells - u.cells) / n.contributed.cells)
  }

  /** counts a copy of `cell` on node `id` in the usage and the anti-affinity counters */
  add (id: PeerId, cell: string, role: 'primary' | 'clone'): void { this.count(id, cell, role, 1) }

  remove (id: PeerId, cell: string, role: 'primary' | 'clone'): void { this.count(id, cell, role, -1) }

  /** forgets all usage (the board is then refilled from the kept placement) */
  reset (): void {
    for (const id of this.ids) this.used.set(id, { memory: 0, cells: 0 })
    this.primaries.clear(); this.primaryZones.clear(); this.copies.clear()
  }

  private count (id: PeerId, cell: string, role: 'primary' | 'clone', delta: 1 | -1): void {
    const u = this.used.get(id) as Amount
    u.memory += delta * this.cost(cell)
    u.cells += delta
    const bump = (m: Map<string, Map<string, number>>, key: string): void => {
      const inner = m.get(cell) ?? new Map<string, number>()
      inner.set(key, (inner.get(key) ?? 0) + delta)
      m.set(cell, inner)
    }
    bump(this.copies, id)
    if (role === 'primary') { bump(this.primaries, id); bump(this.primaryZones, this.zone(id)) }
  }

  cost (cell: string): number { return this.costs.get(cell) as number }

  address (cell: string, index: number): string { return instanceAddress(this.app, cell, index) }

  /** primaries of `cell` on node `id` */
  primariesOn (cell: string, id: PeerId): number { return this.primaries.get(cell)?.get(id) ?? 0 }

  primariesInZone (cell: string, zone: string): number { return this.primaryZones.get(cell)?.get(zone) ?? 0 }

  /** copies (primaries and clones) of `cell` on node `id` */
  copiesOn (cell: string, id: PeerId): number { return this.copies.get(cell)?.get(id) ?? 0 }

  membersInZone (inst: InstancePlacement, zone: string, except?: PeerId): number {
    return [inst.primary, ...inst.clones].filter(m => m !== null && m !== except && this.zone(m) === zone).length
  }

  /** the healthiest of some nodes: largest free fraction, then lowest peer id */
  healthiest (ids: PeerId[]): PeerId {
    return [...ids].sort((a, b) => this.freeFraction(b) - this.freeFraction(a) || (a < b ? -1 : 1))[0]
  }

  slotsOn (id: PeerId): Slot[] {
    const slots: Slot[] = []
    for (const cell of Object.keys(this.work).sort()) {
      this.work[cell].forEach((inst, index) => {
        if (inst.primary === id) slots.push({ cell, index, role: 'primary' })
        if (inst.clones.includes(id)) slots.push({ cell, index, role: 'clone' })
      })
    }
    return slots
  }
}

type Score = Array<number | string>

function compareScores (a: Score, b: Score): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1
  }
  return 0
}

function best (candidates: PeerId[], score: (id: PeerId) => Score): PeerId | undefined {
  let chosen: PeerId | undefined
  let chosenScore: Score | undefined
  for (const id of candidates) {
    const s = score(id)
    if (chosenScore === undefined || compareScores(s, chosenScore) < 0) { chosen = id; chosenScore = s }
  }
  return chosen
}

function choosePrimaryNode (b: Board, cell: string): PeerId | undefined {
  const cost = b.cost(cell)
  return best(b.ids.filter(id => b.fits(id, cost)),
    id => [b.primariesOn(cell, id), b.primariesInZone(cell, b.zone(id)), -b.freeFraction(id, cost, 1), id])
}

function chooseCloneNode (b: Board, cell: string, inst: InstancePlacement): PeerId | undefined {
  const cost = b.cost(cell)
  const taken = new Set([inst.primary, ...inst.clones])
  return best(b.ids.filter(id => !taken.has(id) && b.fits(id, cost)),
    id => [b.membersInZone(inst, b.zone(id)), b.copiesOn(cell, id), -b.freeFraction(id, cost, 1), id])
}

function noRoomReason (b: Board, cell: string, role: 'primary' | 'clone'): string {
  if (b.ids.length === 0) return 'no live node'
  const need = `${formatSize(b.cost(cell))} (memory limit × ${b.rule.memoryHeadroom}) and one cell slot`
  return role === 'clone'
    ? `no live node other than those holding this instance has room for ${need}`
    : `no live node has room for ${need}`
}

export function place (input: PlacementInput): PlacementResult {
  const rule = input.accounting ?? defaultAccounting
  const rebalance = { ...defaultRebalance, ...input.rebalance }
  const desired = input.desired
  const costs = new Map(Object.entries(desired.cells).map(([cell, spec]) => [cell, cellCost(rule, spec.memory)]))
  const b = new Board(desired.app, input.nodes, input.reservedByOthers, rule, costs)
  const actions: PlacementAction[] = []
  const pending: PendingInstance[] = []
  const isLive = (id: PeerId | null): id is PeerId => id !== null && b.live.has(id)

  // usage of the current placement, for choosing which clone to promote
  for (const [cell, instances] of Object.entries(input.current)) {
    if (!costs.has(cell)) continue
    for (const inst of instances) for (const m of new Set([inst.primary, ...inst.clones])) if (isLive(m)) b.add(m, cell, 'clone')
  }
  const promotionFree = new Map(b.ids.map(id => [id, b.freeFraction(id)]))
  const healthiestByCurrent = (ids: PeerId[]): PeerId =>
    [...ids].sort((x, y) => (promotionFree.get(y) as number) - (promotionFree.get(x) as number) || (x < y ? -1 : 1))[0]
  b.reset()

  // why an instance's primary or clones must be (re)placed, for the actions' reasons
  const lostPrimary = new Map<string, PeerId>()
  const lostClones = new Map<string, PeerId[]>()
  const evictedPrimary = new Map<string, PeerId>()
  const evictedClones = new Map<string, PeerId[]>()
  const promoted = new Set<string>()
  const push = <K, V>(m: Map<K, V[]>, k: K, v: V): void => { m.set(k, [...(m.get(k) ?? []), v]) }

  // 1. keep what is valid
  const allCells = [...new Set([...Object.keys(desired.cells), ...Object.keys(input.current)])].sort()
  for (const cell of allCells) {
    const spec = desired.cells[cell]
    const current = input.current[cell] ?? []
    const dropAll = (inst: InstancePlacement, address: string, reason: string): void => {
      if (isLive(inst.primary)) actions.push({ kind: 'drop-primary', address, node: inst.primary, reason })
      for (const c of new Set(inst.clones)) if (isLive(c)) actions.push({ kind: 'drop-clone', address, node: c, reason })
    }
    if (spec === undefined) {
      current.forEach((inst, i) => { dropAll(inst, b.address(cell, i), 'cell removed from the manifest') })
      continue
    }
    const kept: InstancePlacement[] = []
    for (let i = 0; i < Math.max(current.length, spec.replicas); i++) {
      const inst = current[i] ?? { primary: null, clones: [] }
      const address = b.address(cell, i)
      if (i >= spec.replicas) { dropAll(inst, address, `replicas reduced to ${spec.replicas}`); continue }
      let primary = isLive(inst.primary) ? inst.primary : null
      if (inst.primary !== null && primary === null) lostPrimary.set(address, inst.primary)
      let clones: PeerId[] = []
      for (const c of new Set(inst.clones)) {
        if (!isLive(c)) { if (c !== inst.primary) push(lostClones, address, c); continue }
        if (c === primary) { actions.push({ kind: 'drop-clone', address, node: c, reason: 'shares a node with its primary' }); continue }
        clones.push(c)
      }
      if (primary === null && clones.length > 0) {
        const node = healthiestByCurrent(clones)
        actions.push({ kind: 'promote', address, node, from: inst.primary, reason: inst.primary === null ? 'instance had no primary' : `primary's node ${inst.primary} is gone` })
        primary = node
        clones = clones.filter(c => c !== node)
        promoted.add(address)
      }
      if (clones.length > spec.clones) {
        for (const c of clones.slice(spec.clones)) actions.push({ kind: 'drop-clone', address, node: c, reason: `clones reduced to ${spec.clones}` })
        clones = clones.slice(0, spec.clones)
      }
      kept.push({ primary, clones })
      if (primary !== null) b.add(primary, cell, 'primary')
      for (const c of clones) b.add(c, cell, 'clone')
    }
    b.work[cell] = kept
  }

  // 2. shed what no longer fits: clones first, then primaries; larger cells first
  for (const id of b.ids) {
    while (b.over(id)) {
      const victim = b.slotsOn(id).sort((x, y) =>
        (x.role === y.role ? 0 : x.role === 'clone' ? -1 : 1) || b.cost(y.cell) - b.cost(x.cell) ||
        (x.cell < y.cell ? -1 : x.cell > y.cell ? 1 : x.index - y.index))[0]
      const inst = b.work[victim.cell][victim.index]
      const address = b.address(victim.cell, victim.index)
      b.remove(id, victim.cell, victim.role)
      if (victim.role === 'clone') {
        inst.clones = inst.clones.filter(c => c !== id)
        push(evictedClones, address, id)
      } else if (inst.clones.length > 0) {
        const node = b.healthiest(inst.clones)
        actions.push({ kind: 'promote', address, node, from: id, reason: `node ${id} is over its limit` })
        b.remove(node, victim.cell, 'clone')
        b.add(node, victim.cell, 'primary')
        inst.primary = node
        inst.clones = inst.clones.filter(c => c !== node)
        promoted.add(address)
      } else {
        inst.primary = null
        evictedPrimary.set(address, id)
      }
    }
  }

  // 3. missing primaries
  for (const cell of Object.keys(b.work).sort()) {
    b.work[cell].forEach((inst, index) => {
      if (inst.primary !== null) return
      const address = b.address(cell, index)
      const node = choosePrimaryNode(b, cell)
      const from = evictedPrimary.get(address)
      if (node === undefined) {
        if (from !== undefined) actions.push({ kind: 'drop-primary', address, node: from, reason: `node ${from} is over its limit and no other node has room` })
        pending.push({ address, role: 'primary', reason: noRoomReason(b, cell, 'primary') })
        return
      }
      inst.primary = node
      b.add(node, cell, 'primary')
      if (from !== undefined) actions.push({ kind: 'move-primary', address, from, node, reason: `node ${from} is over its limit` })
      else {
        const lost = lostPrimary.get(address)
        actions.push({ kind: 'place-primary', address, node, reason: lost !== undefined ? `replaces the primary lost with node ${lost} (no clone)` : 'new instance' })
      }
    })
  }

  // 4. missing clones
  for (const cell of Object.keys(b.work).sort()) {
    const want = desired.cells[cell].clones
    b.work[cell].forEach((inst, index) => {
      const address = b.address(cell, index)
      if (inst.primary === null) {
        for (const f of evictedClones.get(address) ?? []) actions.push({ kind: 'drop-clone', address, node: f, reason: `node ${f} is over its limit and the instance has no primary` })
        return
      }
      while (inst.clones.length < want) {
        const node = chooseCloneNode(b, cell, inst)
        const from = evictedClones.get(address)?.shift()
        if (node === undefined) {
          if (from !== undefined) actions.push({ kind: 'drop-clone', address, node: from, reason: `node ${from} is over its limit and no other node has room` })
          pending.push({ address, role: 'clone', reason: noRoomReason(b, cell, 'clone') })
          for (const f of evictedClones.get(address) ?? []) actions.push({ kind: 'drop-clone', address, node: f, reason: `node ${f} is over its limit and no other node has room` })
          evictedClones.delete(address)
          break
        }
        inst.clones.push(node)
        b.add(node, cell, 'clone')
        if (from !== undefined) { actions.push({ kind: 'move-clone', address, from, node, reason: `node ${from} is over its limit` }); continue }
        const lost = lostClones.get(address)?.shift()
        const reason = lost !== undefined ? `replaces the clone lost with node ${lost}` : promoted.has(address) ? 'replaces the clone promoted to primary' : 'new clone'
        actions.push({ kind: 'place-clone', address, node, reason })
      }
    })
  }

  // 5. rebalance, a bounded number of moves
  for (let moves = 0; moves < rebalance.maxMoves; moves++) {
    const move = findRebalanceMove(b, rebalance.threshold)
    if (move === undefined) break
    const { slot, from, to } = move
    const inst = b.work[slot.cell][slot.index]
    const reason = `balance: node ${from} at ${Math.round((1 - b.freeFraction(from)) * 100)}% load, node ${to} at ${Math.round((1 - b.freeFraction(to)) * 100)}%`
    b.remove(from, slot.cell, slot.role)
    b.add(to, slot.cell, slot.role)
    if (slot.role === 'primary') inst.primary = to
    else inst.clones = inst.clones.map(c => c === from ? to : c)
    actions.push({ kind: slot.role === 'primary' ? 'move-primary' : 'move-clone', address: b.address(slot.cell, slot.index), from, node: to, reason })
  }

  return { placement: b.work, actions, pending }
}

function findRebalanceMove (b: Board, threshold: number): { slot: Slot, from: PeerId, to: PeerId } | undefined {
  const load = (id: PeerId, extraCost = 0, extraCells = 0): number => 1 - b.freeFraction(id, extraCost, extraCells)
  const byLoad = b.ids.filter(id => Number.isFinite(b.freeFraction(id)))
    .sort((x, y) => load(y) - load(x) || (x < y ? -1 : 1))
  for (const from of byLoad) {
    const slots = b.slotsOn(from).sort((x, y) => (x.role === y.role ? 0 : x.role === 'clone' ? -1 : 1))
    for (const slot of slots) {
      const inst = b.work[slot.cell][slot.index]
      const cost = b.cost(slot.cell)
      for (const to of [...byLoad].reverse()) {
        const gap = load(from) - load(to)
        if (gap <= threshold) break
        if (to === from || inst.primary === to || inst.clones.includes(to) || !b.fits(to, cost)) continue
        if (slot.role === 'primary') {
          if (b.primariesOn(slot.cell, to) >= b.primariesOn(slot.cell, from)) continue
          if (b.zone(to) !== b.zone(from) && b.primariesInZone(slot.cell, b.zone(to)) >= b.primariesInZone(slot.cell, b.zone(from))) continue
        } else if (b.membersInZone(inst, b.zone(to), from) > b.membersInZone(inst, b.zone(from), from)) continue
        const fromAfter = load(from, -cost, -1)
        const toAfter = load(to, cost, 1)
        if (Math.max(fromAfter, toAfter) < load(from) - 1e-9 && Math.abs(fromAfter - toAfter) < gap - 1e-9) return { slot, from, to }
      }
    }
  }
  return undefined
}
