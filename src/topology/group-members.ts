// Which nodes form an app's Raft group (SPEC §2: 3, or fewer if the mesh is smaller).
// Live members stay (changing a Raft group's membership is costly and risky); free seats
// go to live nodes in failure zones the group does not cover yet, then to the largest
// contributors; ties by peer id, so every node computes the same group.
import type { NodeCapacity, PeerId } from './types.js'

export function pickGroupMembers (nodes: NodeCapacity[], n = 3, current: PeerId[] = []): PeerId[] {
  const live = new Map<PeerId, NodeCapacity>()
  for (const node of nodes) if (node.alive) live.set(node.id, node)
  const zone = (id: PeerId): string => live.get(id)?.zone ?? `node:${id}`
  const chosen = [...new Set(current)].filter(id => live.has(id)).sort().slice(0, n)
  const zones = new Set(chosen.map(zone))
  const rest = [...live.values()].filter(node => !chosen.includes(node.id))
  while (chosen.length < n && rest.length > 0) {
    rest.sort((a, b) =>
      Number(zones.has(zone(a.id))) - Number(zones.has(zone(b.id))) ||
      b.contributed.memory - a.contributed.memory ||
      b.contributed.cells - a.contributed.cells ||
      (a.id < b.id ? -1 : 1))
    const next = rest.shift() as NodeCapacity
    chosen.push(next.id)
    zones.add(zone(next.id))
  }
  return chosen.sort()
}

/**
 * The other members to fetch an app's bundle from, in order: the live ones first. A member
 * judged down comes last: a stalled one (SIGSTOP) accepts the dial in its kernel and then
 * holds the fetch until its timeout, and a new leader that asked it first started a clone
 * 5.7 s after a failover (the new primary's replies wait for a clone).
 */
export function bundleSources (members: PeerId[], self: PeerId, live: ReadonlySet<PeerId>): PeerId[] {
  const others = members.filter(m => m !== self)
  return [...others.filter(m => live.has(m)), ...others.filter(m => !live.has(m))]
}

export type MemberChange = { remove: PeerId } | { add: PeerId }

/** a membership change the leader proposed, and when (ms) */
export interface ProposedMemberChange { node: PeerId, add: boolean, at: number }

/**
 * Whether the leader may propose its next membership change: at once when the last one is
 * applied (`members` shows it), else once `retryMs` have passed (it was lost, or its
 * proposal dropped). After a removal, the add that restores fault tolerance must not wait.
 */
export function memberChangeDue (last: ProposedMemberChange | undefined, members: PeerId[], now: number, retryMs: number): boolean {
  return last === undefined || last.add === members.includes(last.node) || now - last.at >= retryMs
}

/**
 * Updates since when each group member has been missing: gone from the live nodes (its
 * capacity adverts stopped, or the failure detector judged it down) and not `answering`
 * on an open connection now. A member that answers is not lost, whatever became of its
 * adverts: gossip can fail between two live nodes (gossip-repair.ts), and removing a live
 * member left a keyed shard with no node for its clone, its adds unanswered. Members no
 * longer missing, and nodes no longer members, are forgotten.
 */
export function noteMissing (missingSince: Map<PeerId, number>, members: ReadonlySet<PeerId>, live: ReadonlySet<PeerId>, answering: (peer: PeerId) => boolean, now: number): void {
  const missing = (peer: PeerId): boolean => !live.has(peer) && !answering(peer)
  for (const peer of [...missingSince.keys()]) if (!members.has(peer) || !missing(peer)) missingSince.delete(peer)
  for (const peer of members) if (!missingSince.has(peer) && missing(peer)) missingSince.set(peer, now)
}

export interface MemberChangeInput {
  members: PeerId[]
  /** the leader deciding: never removes itself */
  self: PeerId
  /** member → since when (ms) it has been missing from the live nodes */
  missingSince: ReadonlyMap<PeerId, number>
  nodes: NodeCapacity[]
  now: number
  /** ms a member must be missing before it is removed */
  verdictAfterMs: number
  /** group size (default 3) */
  n?: number
  /** whether a member said it is leaving the mesh: it is removed at once, while it still votes (a group of two left with a gone member has no quorum) */
  left?: (peer: PeerId) => boolean
  /**
   * whether members may be judged missing (default true): false while the leader's own
   * capacity view is still filling after its start. Free seats are filled either way: a
   * group of two has no room for a fault, and a leader that just restarted must not wait.
   */
  judgeMissing?: boolean
}

/**
 * The one membership change a group's leader makes next, if any: remove a member that
 * left the mesh or has been missing for long enough; else, only while the group has a
 * free seat, add the best live node.
 * Never an add beside a suspected member: a group of 4 with one down needs 3 for its
 * quorum, so one more fault (or a newcomer still catching up) stalls it.
 */
export function nextMemberChange (input: MemberChangeInput): MemberChange | undefined {
  const n = input.n ?? 3
  const missingSince = input.judgeMissing === false ? new Map<PeerId, number>() : input.missingSince
  const dead = input.members.find(m => m !== input.self && (input.left?.(m) === true || input.now - (missingSince.get(m) ?? input.now) >= input.verdictAfterMs))
  if (dead !== undefined) return { remove: dead }
  if (input.members.length >= n) return undefined
  const live = input.members.filter(m => !missingSince.has(m))
  const add = pickGroupMembers(input.nodes, n, live).find(m => !input.members.includes(m))
  return add !== undefined ? { add } : undefined
}
