// Reservations: how the leaders of different apps share nodes without oversubscribing
// them when they place cells at the same moment.
//
// Protocol (topic stem/<mesh>/leaders, Frame payload `leaders`, src/wire/proto/leaders.proto):
//  - Every app leader announces, at least every ttl/3, the *full set* of its app's
//    reservation items {id, node, memory, cells, since} with its Raft term and a version
//    that grows within the term. State, not deltas: a lost or repeated announcement is
//    harmless; one with a lower (term, version) than the last accepted is ignored (replay,
//    deposed leader). Items live in the app's replicated state, so a new leader re-announces
//    them with their ids and `since`. Items lapse `ttl` after their last announcement.
//    (Checking that the frame's signer leads the app at that term is the caller's job.)
//  - To use more of a node a leader adds an item, `since` = its clock now. An item never
//    grows and its `since` never changes (that would jump the queue); it may shrink or go.
//  - Conflict rule, per node: the items of all apps are ordered by (since, app, id) and
//    admitted in that order while they fit in the node's contribution; the others are
//    rejected. Every leader seeing the same announcements computes the same answer.
//  - An item is *effective* — its cells may start — once it has been in the ledger for
//    `settle` ms (longer than gossip takes to reach every leader) and is admitted. Effective
//    is sticky: it stays admitted ahead of anything not yet effective, so running cells are
//    never displaced by a later arrival or by a shrink that lets a rejected item back in.
//  - Backdating is bounded: an item first seen with `since` more than `maxSkew` ms in the
//    past or future is refused (except in the first announcement seen of an app, its
//    baseline, whose items count as seen since `since` + `maxSkew`: a restarted node
//    settles the app's old room as every other ledger did). With settle > 2 × maxSkew, no newly arriving item can sort before an item
//    that is already effective, so two leaders claiming the last room of a node at the same
//    moment both see both claims within `settle`, agree on the order, and exactly one wins.
//    The loser withdraws its item and re-places elsewhere.
//  - Placement for app X counts every other app's admitted (effective or settling) items
//    as reserved (`reservedByOthers`); rejected items count for nothing. The node itself
//    still refuses to start cells beyond its contribution: the last guard if gossip was cut.
import { nameProblem } from './manifest.js'
import type { Amount, NodeCapacity, PeerId } from './types.js'

export interface ReservationItem {
  id: string
  node: PeerId
  memory: number
  cells: number
  since: number
}

export interface ReservationAnnouncement {
  app: string
  term: number
  version: number
  ttlMs: number
  items: ReservationItem[]
}

export type ItemState = 'effective' | 'settling' | 'rejected'

export interface ItemStatus {
  app: string
  item: ReservationItem
  state: ItemState
}

export interface LedgerOptions {
  /** ms an item must have been visible before it is effective */
  settleMs: number
  /** largest accepted distance between a new item's `since` and the local clock */
  maxSkewMs: number
  /** largest accepted ttl */
  maxTtlMs: number
  /** most items in one announcement */
  maxItems: number
}

export const defaultLedgerOptions: LedgerOptions = { settleMs: 2500, maxSkewMs: 1000, maxTtlMs: 120_000, maxItems: 4096 }

export type ApplyResult = { accepted: true } | { accepted: false, reason: string }

interface HeldItem { item: ReservationItem, firstSeen: number, effective: boolean }

interface AppEntry {
  term: number
  version: number
  expiresAt: number
  items: Map<string, HeldItem>
}

const maxIdLength = 64
const maxPeerIdLength = 128

function compareItems (a: { app: string, item: ReservationItem }, b: { app: string, item: ReservationItem }): number {
  if (a.item.since !== b.item.since) return a.item.since - b.item.since
  if (a.app !== b.app) return a.app < b.app ? -1 : 1
  return a.item.id < b.item.id ? -1 : a.item.id > b.item.id ? 1 : 0
}

/** Why an announcement is malformed, or undefined. Checks only its own content. */
export function announcementProblem (a: ReservationAnnouncement, options: LedgerOptions = defaultLedgerOptions): string | undefined {
  const appProblem = typeof a.app === 'string' ? nameProblem(a.app) : 'app is not a string'
  if (appProblem !== undefined) return `app: ${appProblem}`
  if (!Number.isSafeInteger(a.term) || a.term < 0 || !Number.isSafeInteger(a.version) || a.version < 0) return 'term and version must be non-negative integers'
  if (!Number.isSafeInteger(a.ttlMs) || a.ttlMs <= 0 || a.ttlMs > options.maxTtlMs) return `ttl ${a.ttlMs} ms is out of range (1..${options.maxTtlMs})`
  if (!Array.isArray(a.items) || a.items.length > options.maxItems) return `too many items (at most ${options.maxItems})`
  const ids = new Set<string>()
  for (const item of a.items) {
    if (typeof item.id !== 'string' || item.id.length === 0 || item.id.length > maxIdLength) return 'an item has an empty or oversized id'
    if (ids.has(item.id)) return `item ${item.id} appears twice`
    ids.add(item.id)
    if (typeof item.node !== 'string' || item.node.length === 0 || item.node.length > maxPeerIdLength) return `item ${item.id} has an invalid node`
    if (!Number.isSafeInteger(item.memory) || item.memory < 0 || !Number.isSafeInteger(item.cells) || item.cells < 0) return `item ${item.id} has an invalid amount`
    if (item.memory === 0 && item.cells === 0) return `item ${item.id} reserves nothing`
    if (!Number.isSafeInteger(item.since) || item.since < 0) return `item ${item.id} has an invalid since`
  }
  return undefined
}

/**
 * When an item of the first announcement a ledger sees of an app counts as seen: at its
 * `since` (plus the clock skew allowed), not now. Every ledger that held the app's
 * announcements since then has seen it that long, so it settles as it did there: a node
 * restarted moments before it became the app's leader waited settleMs on room the app
 * already held, and its failover to a clone waited with it (bench cell-failover: 3.5 s).
 * A new claim (since within maxSkew of now) still waits the whole settleMs.
 */
function baselineSeen (item: ReservationItem, now: number, options: LedgerOptions): number {
  return Math.min(now, item.since + options.maxSkewMs)
}

/**
 * The reservations this node has heard of, per app. Pure apart from its own state: every
 * method takes the current time, nothing runs on timers.
 */
export class ReservationLedger {
  readonly options: LedgerOptions
  private readonly apps = new Map<string, AppEntry>()

  constructor (options: Partial<LedgerOptions> = {}) {
    this.options = { ...defaultLedgerOptions, ...options }
    if (this.options.settleMs <= 2 * this.options.maxSkewMs) throw new Error('settleMs must exceed 2 × maxSkewMs')
  }

  /** Takes an announcement in, whole or not at all. */
  apply (a: ReservationAnnouncement, now: number): ApplyResult {
    const problem = announcementProblem(a, this.options)
    if (problem !== undefined) return { accepted: false, reason: problem }
    const entry = this.apps.get(a.app)
    if (entry !== undefined && entry.expiresAt <= now) this.apps.delete(a.app)
    const previous = this.apps.get(a.app)
    if (previous !== undefined && (a.term < previous.term || (a.term === previous.term && a.version <= previous.version))) {
      return { accepted: false, reason: `stale announcement (term ${a.term}, version ${a.version}; have term ${previous.term}, version ${previous.version})` }
    }
    const items = new Map<string, HeldItem>()
    for (const item of a.items) {
      const held = previous?.items.get(item.id)
      if (held !== undefined) {
        if (held.item.node !== item.node || held.item.since !== item.since) return { accepted: false, reason: `item ${item.id} changed its node or since` }
        if (item.memory > held.item.memory || item.cells > held.item.cells) return { accepted: false, reason: `item ${item.id} grew (claim more with a new item)` }
        items.set(item.id, { item: { ...item }, firstSeen: held.firstSeen, effective: held.effective })
        continue
      }
      if (previous !== undefined && Math.abs(now - item.since) > this.options.maxSkewMs) {
        return { accepted: false, reason: `new item ${item.id} has since ${item.since}, ${now - item.since} ms from this node's clock (at most ${this.options.maxSkewMs})` }
      }
      items.set(item.id, { item: { ...item }, firstSeen: previous === undefined ? baselineSeen(item, now, this.options) : now, effective: false })
    }
    this.apps.set(a.app, { term: a.term, version: a.version, expiresAt: now + a.ttlMs, items })
    return { accepted: true }
  }

  /** Ids of the items held for `app`, or undefined if none of its announcements is live. */
  heldIds (app: string, now: number): Set<string> | undefined {
    const entry = this.apps.get(app)
    if (entry === undefined || entry.expiresAt <= now) return undefined
    return new Set(entry.items.keys())
  }

  /** Forgets apps whose last announcement lapsed. */
  expire (now: number): void {
    for (const [app, entry] of this.apps) if (entry.expiresAt <= now) this.apps.delete(app)
  }

  /**
   * The state of every item, per node: effective items first (sticky), then the rest in
   * (since, app, id) order, admitted while they fit in the node's contribution. Items on
   * nodes missing from `nodes` are rejected (their capacity is unknown). Marks items that
   * are admitted and settled as effective.
   */
  evaluate (nodes: NodeCapacity[], now: number): ItemStatus[] {
    this.expire(now)
    const capacity = new Map(nodes.map(n => [n.id, n.contributed]))
    const perNode = new Map<PeerId, Array<{ app: string, held: HeldItem }>>()
    for (const [app, entry] of this.apps) {
      for (const held of entry.items.values()) {
        perNode.set(held.item.node, [...(perNode.get(held.item.node) ?? []), { app, held }])
      }
    }
    const out: ItemStatus[] = []
    for (const node of [...perNode.keys()].sort()) {
      const entries = (perNode.get(node) ?? []).sort((a, b) => compareItems({ app: a.app, item: a.held.item }, { app: b.app, item: b.held.item }))
      const cap = capacity.get(node)
      const used: Amount = { memory: 0, cells: 0 }
      for (const e of entries) {
        if (e.held.effective) { used.memory += e.held.item.memory; used.cells += e.held.item.cells }
      }
      for (const e of entries) {
        const { item } = e.held
        if (e.held.effective) { out.push({ app: e.app, item, state: 'effective' }); continue }
        const fits = cap !== undefined && used.memory + item.memory <= cap.memory && used.cells + item.cells <= cap.cells
        if (!fits) { out.push({ app: e.app, item, state: 'rejected' }); continue }
        used.memory += item.memory
        used.cells += item.cells
        if (now - e.held.firstSeen >= this.options.settleMs) e.held.effective = true
        out.push({ app: e.app, item, state: e.held.effective ? 'effective' : 'settling' })
      }
    }
    return out
  }

  /** Memory and cells other apps' admitted items hold on each node: placement's `reservedByOthers`. */
  reservedByOthers (app: string, nodes: NodeCapacity[], now: number): Map<PeerId, Amount> {
    const reserved = new Map<PeerId, Amount>()
    for (const s of this.evaluate(nodes, now)) {
      if (s.app === app || s.state === 'rejected') continue
      const r = reserved.get(s.item.node) ?? { memory: 0, cells: 0 }
      r.memory += s.item.memory
      r.cells += s.item.cells
      reserved.set(s.item.node, r)
    }
    return reserved
  }

  /** What each node has left for `app`: its contribution minus other apps' admitted items (≥ 0). */
  freeFor (app: string, nodes: NodeCapacity[], now: number): Map<PeerId, Amount> {
    const reserved = this.reservedByOthers(app, nodes, now)
    return new Map(nodes.map(n => {
      const r = reserved.get(n.id)
      return [n.id, { memory: Math.max(0, n.contributed.memory - (r?.memory ?? 0)), cells: Math.max(0, n.contributed.cells - (r?.cells ?? 0)) }]
    }))
  }

  /** The items of one app with their states. */
  statusOf (app: string, nodes: NodeCapacity[], now: number): ItemStatus[] {
    return this.evaluate(nodes, now).filter(s => s.app === app)
  }
}

/**
 * The items an app should announce so that it holds `wanted` on each node: existing items
 * are kept (they keep their place in the queue); a node needing more gets a new item for
 * the difference, claimed `now`; a node needing less shrinks or drops its newest items first.
 */
export function planClaims (items: ReservationItem[], wanted: ReadonlyMap<PeerId, Amount>, now: number, newId: () => string): ReservationItem[] {
  const byNode = new Map<PeerId, ReservationItem[]>()
  for (const item of items) byNode.set(item.node, [...(byNode.get(item.node) ?? []), { ...item }])
  const out: ReservationItem[] = []
  for (const node of [...new Set([...byNode.keys(), ...wanted.keys()])].sort()) {
    const held = (byNode.get(node) ?? []).sort((a, b) => a.since - b.since || (a.id < b.id ? -1 : 1))
    const want = wanted.get(node) ?? { memory: 0, cells: 0 }
    for (const dim of ['memory', 'cells'] as const) {
      let excess = held.reduce((n, i) => n + i[dim], 0) - want[dim]
      for (let i = held.length - 1; i >= 0 && excess > 0; i--) {
        const cut = Math.min(held[i][dim], excess)
        held[i][dim] -= cut
        excess -= cut
      }
    }
    const kept = held.filter(i => i.memory > 0 || i.cells > 0)
    const more = {
      memory: Math.max(0, want.memory - kept.reduce((n, i) => n + i.memory, 0)),
      cells: Math.max(0, want.cells - kept.reduce((n, i) => n + i.cells, 0))
    }
    if (more.memory > 0 || more.cells > 0) kept.push({ id: newId(), node, ...more, since: now })
    out.push(...kept)
  }
  return out
}
