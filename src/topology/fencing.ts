// Fencing (SPEC §2): a node keeps running an instance only while its app's latest
// announcement wants it there. A node that returns after being declared dead, or whose
// instance moved to another node, or whose app scaled down or was reverted, reverts its
// copies instead of serving stale state — never two live primaries for one instance.
import type { AppAnnouncement } from './announcement.js'

const INSTANCE = /^[^/]+\/([^#]+)#(\d+)$/

/** The addresses among `local` (this node's transformed cells) that `a` no longer places on `self`. */
export function unwantedInstances (a: AppAnnouncement, local: string[], self: string): string[] {
  const prefix = `${a.app}/`
  const replicas = new Map(a.cells.map(c => [c.name, c.replicas]))
  return local.filter(address => {
    if (!address.startsWith(prefix)) return false
    const m = INSTANCE.exec(address)
    if (m === null) return false
    if (a.reverted || (replicas.get(m[1]) ?? 0) <= Number(m[2])) return true
    // another node now runs this instance (the leader saw it start there)
    const inst = a.instances.find(i => i.address === address)
    return inst !== undefined && inst.node !== '' && inst.node !== self && inst.state === 'transformed'
  })
}

/** a clone record as the rule below needs it */
export interface HeldCloneInfo {
  address: string
  /** ms (local clock) when the leader's hold arrived; restored from disk: when restored */
  heldAt: number
  /** restored from disk after a restart, and no announcement has listed it since */
  restored: boolean
}

/**
 * The clones among `held` that `a` no longer assigns to `self`: its app reverted, its
 * instance gone, or neither its clone nor (about to be promoted) its primary placed here.
 * A clone the leader's `hold` created less than `graceMs` ago is kept, as that hold may
 * overtake the announcement that lists it. A copy restored from disk may be the newest
 * copy of its instance, which the leader is still looking for (recovery.ts): it goes only
 * once its instance runs (transformed) on another node, or is gone.
 */
export function unwantedClones (a: AppAnnouncement, held: HeldCloneInfo[], self: string, now: number, graceMs: number): string[] {
  const prefix = `${a.app}/`
  const replicas = new Map(a.cells.map(c => [c.name, c.replicas]))
  return held.filter(c => {
    if (!c.address.startsWith(prefix)) return false
    if (a.reverted) return true
    const inst = a.instances.find(i => i.address === c.address)
    if (inst !== undefined && (inst.clones.includes(self) || inst.node === self)) return false
    if (c.restored) {
      const m = INSTANCE.exec(c.address)
      const gone = m === null || (replicas.get(m[1]) ?? 0) <= Number(m[2])
      return gone || (inst !== undefined && inst.node !== '' && inst.state === 'transformed')
    }
    return now - c.heldAt >= graceMs
  }).map(c => c.address)
}

/**
 * The primary's lease: a reply may leave only while a clone's confirmation is fresh, i.e.
 * the request the clone confirmed (holding the instance's newest state, not promoted and
 * not serving a newer primary) was sent less than `leaseMs` ago. The lease is measured from
 * the send, on the primary's own clock, so a primary stalled (SIGSTOP) or cut off after the
 * clone answered finds it lapsed when it runs again, and re-confirms: a promoted clone
 * refuses. The leader replaces a primary only after judging it down, which takes longer
 * than `leaseMs` of silence: a deposed primary's replies stop before the new one answers.
 */
export function leaseHolds (confirmSentAt: number, now: number, leaseMs: number): boolean {
  return now - confirmSentAt < leaseMs
}

/**
 * Why a leader's start or promotion of an instance for placement `epoch` comes too late on
 * a node that knows `knownEpoch` (its announcements', its recoveries' fences): a step a
 * deposed leader had in flight when its lease lapsed cannot land after a newer leader moved
 * the instance on. Undefined: it may proceed (no epoch given: an older sender).
 */
export function staleEpochRefusal (address: string, epoch: number | undefined, knownEpoch: number): string | undefined {
  if (epoch === undefined || epoch >= knownEpoch) return undefined
  return `${address} is placed in epoch ${knownEpoch} already: a step of epoch ${epoch} comes from a deposed leader`
}

/** the fence an inventory for a recovery sets on a holder (mesh-simulation.ts does the same) */
export interface InventoryFence {
  /** the placement epoch being recovered */
  epoch: number
  /** the node the recovery starts as primary in that epoch */
  primary: string
}

/**
 * Why a holder fenced by `fence` refuses a state of `stateEpoch` from `peer` (undefined: it
 * takes it). A holder that answered an inventory for epoch E confirms no state of an older
 * epoch's primary from then on, so a deposed primary (woken from a stall, cut off) cannot
 * renew its lease on it while the recovery starts E's primary from what it reported. E's
 * own primary, or one the holder's table already places in E or later (`announced`), may
 * still send its table's older epoch for a while: its announcement lags its start.
 */
export function fenceRefusal (fence: InventoryFence | undefined, peer: string, stateEpoch: number, announced?: { peer: string, epoch: number }): string | undefined {
  if (fence === undefined || stateEpoch >= fence.epoch || peer === fence.primary) return undefined
  if (announced !== undefined && announced.peer === peer && announced.epoch >= fence.epoch) return undefined
  return `fenced: a recovery of epoch ${fence.epoch} asked this node's copy; a state of epoch ${stateEpoch} from ${peer} is refused`
}

/** a primary running on this node, as supersededPrimaries needs it */
export interface LocalPrimary {
  address: string
  /** the placement epoch it serves in (its announcement's) */
  epoch: number
  /** its lease holds (fencing: a clone confirmed its state lately); false for one without clones */
  leaseHolds: boolean
}

/**
 * The local primaries the committed app state on this node (a member of the app's group)
 * shows superseded: a newer placement epoch of the instance names another primary, and the
 * primary's lease has lapsed, so it answers nothing without a clone that no longer follows
 * it (a node woken from a stall). Such a copy reverts itself without waiting for a leader.
 * One still confirming its states is being handed over: the leader's step ends it.
 */
export function supersededPrimaries (state: { placement: Record<string, Array<{ primary: string | null }>>, epochs: Record<string, number> }, local: LocalPrimary[], self: string): string[] {
  return local.filter(p => {
    const m = INSTANCE.exec(p.address)
    if (m === null || p.leaseHolds) return false
    const placed = state.placement[m[1]]?.[Number(m[2])]
    return placed !== undefined && placed.primary !== self && (state.epochs[p.address] ?? 0) > p.epoch
  }).map(p => p.address)
}

/**
 * The primary a clone takes states from: the one its latest announcement places, or the one
 * the leader's hold named if that placement is newer (a clone is held before the
 * announcement that lists it arrives: a deposed primary woken from a stall must not find it
 * open to anyone meanwhile). Undefined: neither is known.
 */
export function followedPrimary (announced: { peer: string, epoch: number } | undefined, held: { primary: string, epoch: number } | undefined): string | undefined {
  if (held === undefined || held.primary === '') return announced?.peer
  return announced === undefined || held.epoch > announced.epoch ? held.primary : announced.peer
}
