// Graceful leave (SPEC §6: SIGINT/SIGTERM leave gracefully). Before a node stops, it
//  1. hands the leadership of every app group it leads to another member (raft leadership
//     transfer to the most up-to-date live voter) and waits until another member leads and
//     has announced the app; that leader removes this node from the group at once (its
//     advert says 'leaving'), and this node waits for its removal: while it still votes,
//     as in a group of two its vote is needed (leaving first left the other member alone
//     in a group with no quorum, for good: sim:mesh seed 1811);
//  2. waits until the apps' leaders moved its instances away: its capacity advert already
//     said 'leaving' (the caller publishes it first), so leaders no longer count it as
//     alive, their placement promotes the clones of its primaries elsewhere (the clone
//     holds every acknowledged state: answers wait for a clone to hold theirs), places its
//     clones on other nodes, and this node's primaries revert themselves once the
//     announcement shows the new primary running (fencing.ts);
// all bounded by the caller's signal: what did not move in time is reported, and then
// the usual failover (promote a clone when the node is gone) takes care of it.
import { StateRole } from '../raft/types.js'
import type { Logger } from '../util/logger.js'
import type { AppGroups } from './app-groups.js'
import type { AppTable } from './app-table.js'
import type { CellRuntimePort, RaftPort } from './ports.js'

export interface GracefulLeaveComponents {
  self: string
  raft: RaftPort
  groups: AppGroups
  table: AppTable
  runtime: CellRuntimePort
  /** live nodes other than this one that could take its work */
  others: () => string[]
  logger: Logger
}

export interface LeaveOutcome {
  /** app → member it now leads (as announced) */
  handedOver: Record<string, string>
  /** apps this node still leads (no other member, or no transfer in time) */
  stillLeading: string[]
  /** apps whose group still counts this node among its members (its removal not seen in time) */
  stillMember: string[]
  /** instances still running here, or placed here as primary or clone */
  stillHere: string[]
}

/** a transfer not done after this long is tried again (an election timeout is 250 ms) */
const TRANSFER_RETRY_MS = 1000
const POLL_MS = 50
/**
 * The hand-over is done once nothing was placed here for this long: a placement its leader
 * proposed before it heard this node was leaving may still commit and name it (sim:mesh seed
 * 4979 with 10% loss: the node left, then stayed a holder of a new instance that recovery
 * waited for).
 */
export const LEAVE_SETTLE_MS = 500

export async function leaveGracefully (c: GracefulLeaveComponents, signal: AbortSignal): Promise<LeaveOutcome> {
  const tried = new Map<string, number>()
  const handedOver: Record<string, string> = {}
  let clearSince: number | undefined
  for (;;) {
    const stillLeading: string[] = []
    const stillMember: string[] = []
    const stays = new Set(c.others())
    for (const h of c.groups.all()) {
      if (h.dissolved || h.state === undefined || !c.raft.hasGroup(h.group)) continue
      const status = c.raft.status(h.group)
      // no member that stays (not one leaving too, as when a whole mesh stops): the
      // leadership leaves with this node, as it would if the node died
      if (!status.members.some(m => stays.has(m))) continue
      const removed = !status.members.includes(c.self)
      const announced = c.table.get(h.app)?.leader
      // another member leads once the announcement names it (this node, removed, knows no leader)
      if (handedOver[h.app] === undefined && status.role !== StateRole.Leader && (status.leader !== '' || removed) && announced !== undefined && announced !== c.self) {
        c.logger.info(`app ${h.app}: leadership handed to ${announced}`)
        handedOver[h.app] = announced
      }
      if (removed && handedOver[h.app] !== undefined) continue
      // waiting for its removal, or once removed for the new leader's announcement; a member
      // waiting for its removal may campaign in vain: it leads nothing
      if (status.role !== StateRole.Leader && (removed || handedOver[h.app] !== undefined)) {
        stillMember.push(h.app)
        continue
      }
      if (status.role === StateRole.Leader && Date.now() - (tried.get(h.group) ?? 0) >= TRANSFER_RETRY_MS) {
        tried.set(h.group, Date.now())
        const to = c.raft.transferLeadership(h.group, [...stays])
        if (to !== '') c.logger.info(`app ${h.app}: handing leadership to ${to}`)
      }
      stillLeading.push(h.app)
    }
    const stillHere = stays.size === 0 ? [] : placedHere(c)
    if (stillLeading.length > 0 || stillMember.length > 0 || stillHere.length > 0) clearSince = undefined
    else clearSince ??= Date.now()
    const settled = clearSince !== undefined && (stays.size === 0 || Date.now() - clearSince >= LEAVE_SETTLE_MS)
    if (settled || signal.aborted) {
      if (stillLeading.length > 0 || stillMember.length > 0 || stillHere.length > 0) c.logger.warn(`left before the hand-over finished: still leading ${stillLeading.join(', ') || 'nothing'}; still a group member of ${stillMember.join(', ') || 'nothing'}; still here ${stillHere.join(', ') || 'nothing'}`)
      return { handedOver, stillLeading, stillMember, stillHere }
    }
    await new Promise<void>(resolve => {
      const timer = setTimeout(done, POLL_MS)
      function done (): void { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
      signal.addEventListener('abort', done, { once: true })
    })
  }
}

/** instances running here, or that an announcement still places here as primary or clone */
function placedHere (c: GracefulLeaveComponents): string[] {
  const here = new Set(c.runtime.cells().filter(cell => cell.status === 'transformed').map(cell => cell.address))
  for (const app of c.table.names()) {
    for (const inst of c.table.get(app)?.instances ?? []) {
      if (inst.node === c.self || inst.clones.includes(c.self)) here.add(inst.address)
    }
  }
  return [...here].sort()
}
