// A leader acts on other nodes only under its Raft lease (RaftHost.leaseHolds): a quorum
// confirmed its leadership less than an election timeout ago, on the clock. The controller
// checks it before every effect, as a step may have waited long (inventories, a bundle
// fetch) since the round confirmed it: a leader stalled meanwhile finds it lapsed.
import type { GroupId } from '../raft/multi/types.js'
import type { RaftPort } from './ports.js'

/** thrown before an effect a leader whose lease lapsed must not make (not a failure of the step) */
export class LeaseLapsedError extends Error {
  constructor (app: string) {
    super(`app ${app}: this node's leader lease lapsed (no quorum confirmed it within an election timeout)`)
    this.name = 'LeaseLapsedError'
  }
}

/** Throws LeaseLapsedError unless this node leads `group` under its lease. */
export function assertLease (raft: Pick<RaftPort, 'leaseHolds'>, group: GroupId, app: string): void {
  if (!raft.leaseHolds(group)) throw new LeaseLapsedError(app)
}
