// Shard balance (issue 18: shards move when nodes join or leave): which shards of keyed
// cells the app's leader moves next, a pure function of the committed placement and of the
// copies that run. Placement (placement.ts) keeps what is valid and never moves a working
// primary; this adds the moves that spread a keyed cell's shard primaries over the nodes,
// so a node that joins gets its share, a few shards at a time.
//
// A shard moves in two planned steps, never by starting blank elsewhere:
//  1. warm: its one clone moves to the target node. The primary then needs that clone's
//     acknowledgement for every answer, so the target holds every acknowledged state and
//     the reply window (messaging's dedupe) that goes with it;
//  2. handover: once that clone runs there, the target becomes the primary (a new epoch)
//     and the old primary stays as its clone. The target's clone refuses the old primary's
//     states from then on, so the old primary cannot acknowledge anything the new one lacks,
//     and reverts itself when the announcement shows the new one running (fencing.ts).
//
// Bounded and stable: at most `maxMoves` shards are in motion at once; a shard moves only
// from a node holding the most primaries of its cell to a target holding at least
// `minGap` (2) fewer, so every move narrows the spread and a balanced cell (spread ≤ 1)
// never moves again, whatever the order of rounds. Only live nodes give, only `targets`
// (live and settled: the caller's hysteresis) receive. Shards with more or fewer than one
// clone do not move: with two clones a primary answers once either holds a state, so the
// target could lack an acknowledged one; without a clone there is nothing warm to hand to.
import type { Placement } from './placement-accounting.js'
import { instanceAddress } from './types.js'
import type { PeerId } from './types.js'

export interface ShardBalanceInput {
  app: string
  placement: Placement
  /** the keyed cells whose shards may move */
  cells: string[]
  /** live nodes: only their primaries move */
  live: PeerId[]
  /** live nodes settled long enough to receive shards */
  targets: PeerId[]
  /** whether the copy of `address` on `node` runs (for a clone: held there) */
  ready: (address: string, node: PeerId) => boolean
  /** most shards in motion at once */
  maxMoves: number
  /** least difference in a cell's primaries between two nodes that justifies a move (default 2) */
  minGap?: number
}

export interface ShardMove {
  /** warm: the clone moves from `from` to `to`; handover: the primary on `from` hands over to its clone on `to` */
  kind: 'warm' | 'handover'
  address: string
  cell: string
  index: number
  from: PeerId
  to: PeerId
}

export interface ShardBalance {
  /** the placement with the moves made */
  placement: Placement
  moves: ShardMove[]
  /** shards whose clone is still starting on their target (in motion: counted in maxMoves) */
  warming: string[]
}

export function planShardMoves (input: ShardBalanceInput): ShardBalance {
  const minGap = input.minGap ?? 2
  const live = new Set(input.live)
  const targets = [...new Set(input.targets)].filter(t => live.has(t)).sort()
  const placement: Placement = {}
  for (const [cell, instances] of Object.entries(input.placement)) placement[cell] = instances.map(i => ({ primary: i.primary, clones: [...i.clones] }))
  const moves: ShardMove[] = []
  const warming: string[] = []
  let budget = input.maxMoves

  for (const cell of [...new Set(input.cells)].sort()) {
    const instances = placement[cell] ?? []
    const count = new Map<PeerId, number>([...live].map(id => [id, 0]))
    for (const inst of instances) if (inst.primary !== null && live.has(inst.primary)) count.set(inst.primary, (count.get(inst.primary) ?? 0) + 1)
    const primaries = (id: PeerId): number => count.get(id) ?? 0
    const moved = new Set<number>()
    const movable = (i: number): boolean => {
      const inst = instances[i]
      return !moved.has(i) && inst.primary !== null && live.has(inst.primary) && inst.clones.length === 1
    }
    const gapOf = (from: PeerId, to: PeerId): number => primaries(from) - primaries(to)
    const note = (kind: ShardMove['kind'], index: number, from: PeerId, to: PeerId): void => {
      moves.push({ kind, address: instanceAddress(input.app, cell, index), cell, index, from, to })
      moved.add(index)
      budget--
    }

    // a shard warming on a target (its clone not running there yet) is in motion already
    instances.forEach((inst, index) => {
      if (budget <= 0 || !movable(index)) return
      const from = inst.primary as PeerId
      const to = inst.clones[0]
      if (!targets.includes(to) || gapOf(from, to) < minGap || input.ready(instanceAddress(input.app, cell, index), to)) return
      count.set(from, primaries(from) - 1)
      count.set(to, primaries(to) + 1)
      moved.add(index)
      warming.push(instanceAddress(input.app, cell, index))
      budget--
    })
    while (budget > 0) {
      // a shard already warm on an emptier target hands over first (the widest gap first)
      let handover: { index: number, gap: number } | undefined
      instances.forEach((inst, index) => {
        if (!movable(index)) return
        const to = inst.clones[0]
        const gap = gapOf(inst.primary as PeerId, to)
        if (!targets.includes(to) || gap < minGap || !input.ready(instanceAddress(input.app, cell, index), to)) return
        if (handover === undefined || gap > handover.gap) handover = { index, gap }
      })
      if (handover !== undefined) {
        const inst = instances[handover.index]
        const from = inst.primary as PeerId
        const to = inst.clones[0]
        inst.primary = to
        inst.clones = [from]
        count.set(from, primaries(from) - 1)
        count.set(to, primaries(to) + 1)
        note('handover', handover.index, from, to)
        continue
      }
      // else a clone moves to the emptiest target, from a shard of the fullest node
      const from = [...live].sort((a, b) => primaries(b) - primaries(a) || (a < b ? -1 : 1))[0]
      const to = targets.filter(t => t !== from).sort((a, b) => primaries(a) - primaries(b) || (a < b ? -1 : 1))[0]
      if (from === undefined || to === undefined || gapOf(from, to) < minGap) break
      const copies = new Map<PeerId, number>()
      for (const inst of instances) for (const m of [inst.primary, ...inst.clones]) if (m !== null) copies.set(m, (copies.get(m) ?? 0) + 1)
      // the shard whose clone sits on the node with the most copies of the cell
      let warm: number | undefined
      instances.forEach((inst, index) => {
        if (inst.primary !== from || !movable(index) || inst.clones[0] === to) return
        if (warm === undefined || (copies.get(inst.clones[0]) ?? 0) > (copies.get(instances[warm].clones[0]) ?? 0)) warm = index
      })
      if (warm === undefined) break
      const inst = instances[warm]
      const was = inst.clones[0]
      inst.clones = [to]
      // counted as moved already: the next pick looks at the gap that remains
      count.set(from, primaries(from) - 1)
      count.set(to, primaries(to) + 1)
      note('warm', warm, was, to)
    }
  }
  return { placement, moves, warming }
}
