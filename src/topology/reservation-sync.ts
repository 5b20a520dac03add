// Leaders talk to leaders: the reservation ledger (reservations.ts) wired into the
// topology service. Every node keeps a ledger of all apps' reservation items, fed by the
// signed announcements on `stem/<mesh>/leaders`; an announcement counts only if its signer
// leads the app at that term, as this node's app table knows it (one that arrives before
// the app announcement naming its leader waits for it). An app's leader:
//  - places its cells around what other apps' admitted items hold (`reservedByOthers`);
//  - derives its own items from the committed placement (each primary or clone = its
//    memory cost + one cell slot, plus one cell-host footprint per node) and commits them
//    with the placement (the `place` command), so a new leader announces the same ids and
//    `since`;
//  - announces them at once after each commit and every ttl/3;
//  - starts, promotes or updates primaries on a node only once every item it holds there
//    is effective (admitted and settled); warm clones run no isolate until promoted and
//    are held at once. A rejected item means another app won the room: the
//    next placement no longer fits there, re-places elsewhere and the item shrinks or goes.
// Ledgers agree only if announcements reach every leader within the settle time. When they
// did not (gossip cut, an overloaded machine) and a node refuses a copy for lack of room,
// the leader counts that node as full beyond what the app runs there, for one ttl: the
// copy is re-placed elsewhere or reported pending, and the app's item there shrinks.
// New room thus costs `settleMs` (2.5 s by default) before cells start on it; cells on
// room already held (failover to a clone, updates) start at once.
import type { Logger } from '../util/logger.js'
import type { AppAnnouncement } from './announcement.js'
import type { AppTable } from './app-table.js'
import { defaultAccounting, appUsage } from './placement-accounting.js'
import type { AccountingRule, DesiredApp, Placement } from './placement-accounting.js'
import { planClaims, ReservationLedger } from './reservations.js'
import type { LedgerOptions, ReservationAnnouncement, ReservationItem } from './reservations.js'
import type { Amount, NodeCapacity, PeerId } from './types.js'
import type { CapacityPort, ClockPort } from './ports.js'

export interface ReservationSyncComponents {
  table: AppTable
  /** the nodes of the capacity view, this node included */
  nodes: CapacityPort
  /** signs and publishes an announcement on the leaders topic */
  publish: (a: ReservationAnnouncement) => void
  logger: Logger
  /** a fresh item id */
  newId: () => string
  now?: ClockPort['now']
}

export interface ReservationSyncInit {
  ledger?: Partial<LedgerOptions>
  /** ms the items of an announcement live without being announced again (default 10 s) */
  reservationTtl?: number
}

/** announcements waiting for the app table to learn their signer's leadership, at most */
const MAX_WAITING = 256

/** Whether an announcement signed by `sender` for `term` comes from the app's leader, as far as the table knows. */
export function signerVerdict (known: AppAnnouncement | undefined, sender: string, term: number): 'accept' | 'wait' | 'refuse' {
  if (known === undefined || Number(known.term) < term) return 'wait'
  if (Number(known.term) > term) return 'refuse'
  return known.leader === sender ? 'accept' : 'refuse'
}

/**
 * The items an app's leader should hold: `planClaims` for what the placement uses on each
 * node, after renewing committed items the ledger has never seen and that are too old to
 * be accepted as new ones (their `since` would be refused as backdated: e.g. the leader
 * that committed them died before announcing them).
 */
export function planReservations (items: ReservationItem[], wanted: ReadonlyMap<PeerId, Amount>, held: ReadonlySet<string> | undefined,
  now: number, freshWithinMs: number, newId: () => string): ReservationItem[] {
  const renewed = items.map(i => held !== undefined && !held.has(i.id) && Math.abs(now - i.since) > freshWithinMs ? { ...i, id: newId(), since: now } : i)
  return planClaims(renewed, wanted, now, newId)
}

/** Items in a canonical order, for comparing two sets. */
export function itemsKey (items: ReservationItem[]): string {
  return JSON.stringify([...items].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0).map(i => [i.id, i.node, i.memory, i.cells, i.since]))
}

/** Nodes on which every one of the app's items is effective (its cells may start there). */
export function readyNodes (statuses: Array<{ item: ReservationItem, state: string }>): Set<PeerId> {
  const ready = new Set<PeerId>()
  const blocked = new Set<PeerId>()
  for (const s of statuses) {
    if (s.state === 'effective') ready.add(s.item.node)
    else blocked.add(s.item.node)
  }
  for (const node of blocked) ready.delete(node)
  return ready
}

/**
 * Adds to `reserved` what makes each node in `full` hold no more of the app than `held`
 * (what it runs there): the room a node refused is not offered again.
 */
export function withRefusals (reserved: ReadonlyMap<PeerId, Amount>, nodes: NodeCapacity[], full: ReadonlySet<PeerId>, held: ReadonlyMap<PeerId, Amount>): Map<PeerId, Amount> {
  const out = new Map(reserved)
  for (const n of nodes) {
    if (!full.has(n.id)) continue
    const r = out.get(n.id) ?? { memory: 0, cells: 0 }
    const h = held.get(n.id) ?? { memory: 0, cells: 0 }
    out.set(n.id, {
      memory: Math.max(r.memory, n.contributed.memory - h.memory, 0),
      cells: Math.max(r.cells, n.contributed.cells - h.cells, 0)
    })
  }
  return out
}

interface Announced { term: number, version: number, at: number, key: string }

export class ReservationSync {
  readonly ledger: ReservationLedger
  readonly ttlMs: number
  private readonly waiting = new Map<string, { a: ReservationAnnouncement, sender: string }>()
  private readonly announced = new Map<string, Announced>()
  /** ids of this node's apps' items already logged as rejected */
  private readonly lost = new Set<string>()
  /** app → node that refused one of its copies for lack of room → until when it counts as full */
  private readonly refusals = new Map<string, Map<PeerId, number>>()
  private readonly now: () => number

  constructor (private readonly components: ReservationSyncComponents, init: ReservationSyncInit = {}) {
    this.ledger = new ReservationLedger(init.ledger)
    this.ttlMs = init.reservationTtl ?? 10_000
    this.now = components.now ?? Date.now
  }

  /** A verified frame's reservation announcement, signed by `sender`. */
  receive (a: ReservationAnnouncement, sender: string): void {
    const verdict = signerVerdict(this.components.table.get(a.app), sender, a.term)
    if (verdict === 'refuse') {
      this.components.logger.debug(`ignored reservations of app ${a.app} from ${sender}: not its leader at term ${a.term}`)
      return
    }
    if (verdict === 'wait') {
      this.waiting.delete(a.app)
      this.waiting.set(a.app, { a, sender })
      if (this.waiting.size > MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value as string)
      return
    }
    this.apply(a, sender)
  }

  /** The app table took an announcement: reservations waiting for it may now count. */
  learned (app: AppAnnouncement): void {
    const w = this.waiting.get(app.app)
    if (w === undefined) return
    this.waiting.delete(app.app)
    this.receive(w.a, w.sender)
  }

  /**
   * Memory and cells other apps' admitted items hold, per node: placement's
   * `reservedByOthers`; a node that lately refused a copy of the app for lack of room
   * offers it no more than `held`, what the app runs there.
   */
  reservedByOthers (app: string, held: ReadonlyMap<PeerId, Amount> = new Map()): Map<PeerId, Amount> {
    const now = this.now()
    const nodes = this.components.nodes()
    const reserved = this.ledger.reservedByOthers(app, nodes, now)
    const refused = this.refusals.get(app)
    if (refused === undefined) return reserved
    for (const [node, until] of refused) if (until <= now) refused.delete(node)
    if (refused.size === 0) this.refusals.delete(app)
    return withRefusals(reserved, nodes, new Set(refused.keys()), held)
  }

  /** A node refused to start a copy of the app for lack of room (its ledger disagreed with ours). */
  noteRefusal (app: string, node: PeerId): void {
    const refused = this.refusals.get(app) ?? new Map<PeerId, number>()
    if (!refused.has(node)) this.components.logger.info(`app ${app}: node ${node} has no room left for it: placing around it`)
    refused.set(node, this.now() + this.ttlMs)
    this.refusals.set(app, refused)
  }

  /** The items the leader of `app` should hold for this placement. */
  plan (app: string, items: ReservationItem[], desired: DesiredApp, placement: Placement, rule: AccountingRule = defaultAccounting): ReservationItem[] {
    const now = this.now()
    // margin for the announcement to reach the other nodes before their skew check
    const freshWithin = Math.max(0, this.ledger.options.maxSkewMs - 250)
    return planReservations(items, appUsage(desired, placement, rule), this.ledger.heldIds(app, now), now, freshWithin, this.components.newId)
  }

  /** Nodes on which the app's cells may start now (as its leader). */
  readyNodes (app: string): Set<PeerId> {
    const statuses = this.ledger.statusOf(app, this.components.nodes(), this.now())
    for (const s of statuses) {
      if (s.state !== 'rejected' || this.lost.has(s.item.id)) continue
      this.lost.add(s.item.id)
      this.components.logger.info(`app ${app}: reservation ${s.item.id} (${s.item.cells} cells) on node ${s.item.node} lost to other apps: placing around it`)
    }
    return readyNodes(statuses)
  }

  /**
   * As the app's leader at `term`: announces its items if they changed, the term is new,
   * or the last announcement is ttl/3 old. Applied here first, like anyone else's.
   */
  announce (app: string, term: number, items: ReservationItem[]): void {
    const now = this.now()
    const key = itemsKey(items)
    const last = this.announced.get(app)
    if (last !== undefined && last.term === term && last.key === key && now - last.at < this.ttlMs / 3) return
    const version = Math.max(last !== undefined && last.term === term ? last.version + 1 : 0, now)
    const a: ReservationAnnouncement = { app, term, version, ttlMs: this.ttlMs, items }
    const applied = this.ledger.apply(a, now)
    if (!applied.accepted) this.components.logger.warn(`app ${app}: own reservations refused: ${applied.reason}`)
    this.announced.set(app, { term, version, at: now, key })
    this.components.publish(a)
  }

  private apply (a: ReservationAnnouncement, sender: string): void {
    const result = this.ledger.apply(a, this.now())
    if (!result.accepted) this.components.logger.debug(`reservations of app ${a.app} from ${sender} refused: ${result.reason}`)
  }
}
