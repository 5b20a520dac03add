// Each node's picture of the mesh's capacity: the latest verified advert of every peer,
// dropped when the peer says it is leaving or misses `missedPeriods` heartbeats.
// Pure logic (clock injected): the capacity service feeds it verified adverts.
import { TypedEventEmitter } from '@libp2p/interface'
import type { CapacityAdvert, InstanceCondition, Resources } from './capacity.js'

export interface PeerCapacity {
  id: string
  addrs: string[]
  capacity: Resources
  free: Resources
  /** ms since the epoch of the last advert received */
  lastSeen: number
  version: bigint
  /** the peer's heartbeat interval (ms), as it advertised it */
  interval: number
  /** its latest advertised rates by key, per second (see CapacityAdvert.load) */
  load: Record<string, number>
  /** its instances that are not serving, by address (see CapacityAdvert.conditions) */
  conditions: Record<string, InstanceCondition>
  /** the name it advertised, if any */
  name?: string
}

export type LostReason = 'left' | 'expired'

export interface CapacityViewEvents {
  'peer:seen': CustomEvent<PeerCapacity>
  'peer:updated': CustomEvent<PeerCapacity>
  'peer:lost': CustomEvent<{ id: string, reason: LostReason }>
}

/** What applying an advert did. 'stale' adverts (older version) change nothing. */
export type ApplyResult = 'seen' | 'updated' | 'refreshed' | 'left' | 'stale'

export interface CapacityViewInit {
  /** a peer is expired after this many heartbeat intervals without an advert (default 3) */
  missedPeriods?: number
  now?: () => number
}

const MIN_INTERVAL = 100
const MAX_INTERVAL = 60_000
const MAX_DEPARTED = 4096

export class CapacityView extends TypedEventEmitter<CapacityViewEvents> {
  private readonly peers = new Map<string, PeerCapacity>()
  /** version of the leaving advert of peers that left, so a late heartbeat cannot bring them back */
  private readonly departed = new Map<string, bigint>()
  private readonly missedPeriods: number
  private readonly now: () => number

  constructor (init: CapacityViewInit = {}) {
    super()
    this.missedPeriods = init.missedPeriods ?? 3
    this.now = init.now ?? Date.now
  }

  /** Apply an advert whose signature and sender were already verified. */
  apply (advert: CapacityAdvert): ApplyResult {
    const known = this.peers.get(advert.peer)
    if (known != null && advert.version < known.version) return 'stale'
    const leftAt = this.departed.get(advert.peer)
    if (known == null && leftAt != null && advert.version <= leftAt) return 'stale'
    if (advert.leaving) {
      this.departed.delete(advert.peer)
      this.departed.set(advert.peer, advert.version)
      // bounded: the oldest departures are forgotten first
      if (this.departed.size > MAX_DEPARTED) this.departed.delete(this.departed.keys().next().value as string)
      if (known == null) return 'left'
      this.peers.delete(advert.peer)
      this.safeDispatchEvent('peer:lost', { detail: { id: advert.peer, reason: 'left' } })
      return 'left'
    }
    const entry: PeerCapacity = {
      id: advert.peer,
      addrs: advert.addrs,
      capacity: advert.contributed,
      free: advert.free,
      lastSeen: this.now(),
      version: advert.version,
      interval: Math.min(MAX_INTERVAL, Math.max(MIN_INTERVAL, advert.interval)),
      load: advert.load ?? {},
      conditions: advert.conditions ?? {},
      ...(advert.name !== undefined ? { name: advert.name } : {})
    }
    this.peers.set(advert.peer, entry)
    if (known == null) {
      this.departed.delete(advert.peer)
      this.safeDispatchEvent('peer:seen', { detail: entry })
      return 'seen'
    }
    if (advert.version === known.version) return 'refreshed'
    this.safeDispatchEvent('peer:updated', { detail: entry })
    return 'updated'
  }

  /** whether `peer` said it was leaving (a graceful leave) and has not advertised since */
  hasLeft (peer: string): boolean {
    return this.departed.has(peer) && !this.peers.has(peer)
  }

  /** Drop peers that missed too many heartbeats; returns their ids. */
  expire (): string[] {
    const now = this.now()
    const gone: string[] = []
    for (const [id, entry] of this.peers) {
      if (now >= this.dueOf(entry)) {
        // no tombstone: a peer that was only cut off comes back with its next heartbeat
        this.peers.delete(id)
        gone.push(id)
        this.safeDispatchEvent('peer:lost', { detail: { id, reason: 'expired' } })
      }
    }
    return gone
  }

  /** when `expire` next has a peer to drop (ms since the epoch), if any peer is known */
  nextExpiry (): number | undefined {
    let next: number | undefined
    for (const entry of this.peers.values()) {
      const due = this.dueOf(entry)
      if (next === undefined || due < next) next = due
    }
    return next
  }

  /** the first moment `entry` has missed `missedPeriods` heartbeats */
  private dueOf (entry: PeerCapacity): number {
    return entry.lastSeen + entry.interval * this.missedPeriods + 1
  }

  get (id: string): PeerCapacity | undefined {
    return this.peers.get(id)
  }

  list (): PeerCapacity[] {
    return [...this.peers.values()]
  }

  get size (): number {
    return this.peers.size
  }
}
