// A leader acts on other nodes only under its Raft lease (RaftHost.leaseHolds): a quorum
// confirmed its leadership less than an election timeout ago, on the clock. The controller
// confirms it again before every effect, as a step may have waited long (inventories, a
// bundle fetch) since the round confirmed it: a leader stalled meanwhile finds no quorum.
import type { GroupId } from '../raft/multi/types.js'
import type { RaftPort } from './ports.js'

/** thrown before an effect a leader whose lease lapsed must not make (not a failure of the step) */
export class LeaseLapsedError extends Error {
  constructor (app: string) {
    super(`app ${app}: this node's leader lease lapsed (no quorum confirmed it within an election timeout)`)
    this.name = 'LeaseLapsedError'
  }
}

/**
 * Resolves once this node leads `group` under its lease — at once while it holds, else
 * after one more confirmation round (a step that waited for inventories or a bundle outlives
 * the round's lease on a loaded machine: without renewing, it would never act) — or throws
 * LeaseLapsedError when no quorum confirms it.
 */
export async function confirmLease (raft: Pick<RaftPort, 'leaseHolds' | 'renewLease'>, group: GroupId, app: string): Promise<void> {
  if (raft.leaseHolds(group) || await raft.renewLease(group)) return
  throw new LeaseLapsedError(app)
}
