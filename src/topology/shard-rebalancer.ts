// The leader's side of shard rebalancing (shard-balance.ts decides): once an app is settled
// (its placement committed and every copy running as placed), the app controller asks this
// for the next placement that moves shards of its keyed cells toward the nodes with fewer.
// It adds what the pure decision cannot know:
//  - hysteresis on nodes: a node receives shards only once it has been live for `settleMs`
//    without a break (a node that flaps, or was just judged down and came back, does not);
//  - a handover only once the target may start the app's cells (its reservations there are
//    effective, reservation-sync.ts): from the commit on the old primary acknowledges
//    nothing more, so the new one must be able to take over in the next round;
//  - a handover only once the target's clone caught up: the inventories of both nodes show
//    the clone holding at least the version the primary ran when asked first (a clone just
//    moved there may not have been sent the primary's state yet if no message came since).
// Every copy counts in placement as it did before (a handover swaps roles on the same nodes;
// a warm step moves one clone), and the caller still checks the result against placement's
// rules (room, anti-affinity) before it commits it.
import type { Logger } from '../util/logger.js'
import type { AppState } from './app-state.js'
import { activeCells } from './app-state.js'
import type { HostedApp } from './app-groups.js'
import { copyKey } from './app-groups.js'
import type { CloneService } from './clones.js'
import { cloneCaughtUp } from './clone-caught-up.js'
import type { Placement } from './placement-accounting.js'
import { planShardMoves } from './shard-balance.js'
import type { ShardMove } from './shard-balance.js'
import type { NodeCapacity, PeerId } from './types.js'

export interface ShardRebalancerComponents {
  clones: Pick<CloneService, 'inventoryOf'>
  logger: Logger
}

export interface ShardRebalancerInit {
  /** most shards of an app in motion at once (default 2) */
  maxMoves?: number
  /** ms a node must have been live without a break before it receives shards (default 5 s) */
  settleMs?: number
}

export interface ShardRebalance {
  placement: Placement
  moves: ShardMove[]
}

export class ShardRebalancer {
  /** live node → since when it has been live without a break */
  private readonly liveSince = new Map<PeerId, number>()

  constructor (private readonly components: ShardRebalancerComponents, private readonly init: ShardRebalancerInit = {}) {}

  /** Notes which nodes are live now (every controller round). */
  observe (nodes: NodeCapacity[], now: number): void {
    const live = new Set(nodes.filter(n => n.alive).map(n => n.id))
    for (const id of [...this.liveSince.keys()]) if (!live.has(id)) this.liveSince.delete(id)
    for (const id of live) if (!this.liveSince.has(id)) this.liveSince.set(id, now)
  }

  /**
   * The next placement of the settled app `h` that moves shards, or undefined (nothing to
   * move, or not yet); `startable`: the nodes where the app's cells may start now.
   */
  async next (h: HostedApp, state: AppState, placement: Placement, now: number, startable: ReadonlySet<PeerId>): Promise<ShardRebalance | undefined> {
    const cells = activeCells(state).filter(c => state.manifest.cells[c].keyed === true)
    if (cells.length === 0) return undefined
    const settleMs = this.init.settleMs ?? 5000
    const live = [...this.liveSince.keys()]
    const targets = live.filter(id => now - (this.liveSince.get(id) as number) >= settleMs)
    const ready = (address: string, node: PeerId): boolean => {
      const copy = h.running.get(copyKey(address, node))
      return copy?.state === 'transformed' && copy.role === 'clone' && startable.has(node)
    }
    const plan = planShardMoves({ app: state.app, placement, cells, live, targets, ready, maxMoves: this.init.maxMoves ?? 2 })
    if (plan.moves.length === 0) return undefined
    const moves: ShardMove[] = []
    for (const move of plan.moves) {
      if (move.kind === 'handover' && !await cloneCaughtUp(this.components.clones, this.components.logger, state.app, move.address, move.from, move.to)) {
        // not yet: the shard keeps its primary this round
        plan.placement[move.cell][move.index] = { primary: move.from, clones: [move.to] }
        continue
      }
      moves.push(move)
    }
    return moves.length === 0 ? undefined : { placement: plan.placement, moves }
  }
}
