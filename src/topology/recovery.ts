// Recovery (README "Durability"): where an instance whose primary the leader does not see
// running starts from. A pure decision over the inventories of the nodes that may hold a
// copy — every node placed as the instance's primary or clone in its recent epochs (the
// app state's `holders`) — so a leader never starts an instance blank while a copy may
// exist:
//
//   - the newest copy that answered, by (epoch, version), is the one to start from: on the
//     target node itself (a promotion), else fetched and handed to it;
//   - a primary already running on the target is adopted, once nothing newer can be missing
//     (a deposed primary cut off by a partition may still run its old epoch's state), when
//     its epoch is the newest: its clones hold only its own states, so a clone that
//     reported a higher version was asked a moment later, not ahead of it;
//   - a holder that did not answer may hold a newer copy, unless what answered covers it:
//     each epoch from the newest answered copy's on is covered when its primary answered
//     (with no damaged copy) or every one of its clones did, one with a copy of that epoch (a reply left only once
//     one clone held its state — unless a later placement dropped its clones), and each
//     clone placed beside another with a copy of it (a reply waited for either of them),
//     and the copy among the clones of the epoch's latest placement (none: the primary
//     acknowledged alone), not on one placed there again after a drop — or every clone the
//     epoch ever had answered with a copy of it, and no placement left its primary alone;
//   - while something is not covered, the leader waits (`recovering`) up to a bound, then
//     says `lost` and keeps asking: a holder that comes back brings its copy. It never
//     starts from an older copy on its own — that would drop what only the missing holders
//     hold, acknowledged states among them (sim:mesh seeds 22480 of the partition profile
//     and 8091 without loss, two clones) — unless the app's owner accepts that loss
//     (`stem restart APP/CELL --accept-loss`): then it starts from the newest copy found,
//     or blank when there is none;
//   - no copy anywhere and every holder answered: the instance never had a state (new),
//     it starts blank — unless a node reported its copy damaged on disk: then it is `lost`.
//     A holder still away is waited for (`recovering`), then the instance is `lost`: it
//     was shown lost at once, a new app's instance among them while its clone's node was
//     cut off for a moment (sim:mesh seed 54).
import type { Role } from './reconcile.js'

/** a node placed for an instance in some epoch (app-state.ts keeps the recent ones) */
export interface Holder {
  node: string
  epoch: number
  role: Role
  /** a clone placed beside another clone of the instance: a reply of that placement waited for either of them */
  paired?: boolean
  /** a clone a later placement of the same epoch no longer lists */
  dropped?: boolean
  /** a clone dropped and placed again in the same epoch: a copy it holds may be from before (it may never have heard of the drop) */
  readded?: boolean
  /**
   * a primary a placement of its epoch gave no clone (true): it may have acknowledged
   * states alone; false: every placement of the epoch gave it one (unset: not recorded,
   * a holder from an earlier Stem)
   */
  alone?: boolean
}

/** one node's copy of the instance, as its inventory reported it */
export interface Copy {
  node: string
  version: number
  epoch: number
  /** a transformed primary there */
  running: boolean
  /** the copy was damaged on that node's disk: not usable, but proof the instance had a state */
  damaged?: boolean
}

export interface RecoveryInput {
  /** where the placement wants the primary */
  target: string
  holders: Holder[]
  /** nodes whose inventory answered (with or without a copy of the instance) */
  answered: Set<string>
  copies: Copy[]
  /** ms since the leader first found this instance without a running primary */
  waitedMs: number
  /** the bound on that wait */
  waitBoundMs: number
  /** the app's owner accepted losing what the missing holders may hold (this episode only) */
  acceptLoss?: boolean
}

export type RecoveryPlan =
  /** a primary already runs on the target: adopt it */
  | { kind: 'running' }
  /** the target holds the newest copy: promote it there */
  | { kind: 'promote', copy: Copy, missing: string[] }
  /** the newest copy is on another node: fetch its state and start the target from it */
  | { kind: 'copy', copy: Copy, missing: string[] }
  /** no copy anywhere, and every node that held one answered: a new instance */
  | { kind: 'blank' }
  /** a holder that may have a newer copy did not answer yet */
  | { kind: 'wait', missing: string[] }
  /** the wait is over: no copy was found, or the newest one found (`older`) may not hold every acknowledged state */
  | { kind: 'lost', missing: string[], older?: Copy }

/**
 * (epoch, version) order, newest first; on a tie a running primary wins, then the
 * target's own copy (promoted where it is, nothing to fetch: a copy kept on a node the
 * instance moved off may equal it)
 */
export function newestCopy (copies: Copy[], target?: string): Copy | undefined {
  let best: Copy | undefined
  const rank = (c: Copy): number => c.running ? 2 : c.node === target ? 1 : 0
  for (const c of copies) {
    if (c.damaged === true) continue
    if (best === undefined || c.epoch > best.epoch || (c.epoch === best.epoch && (c.version > best.version || (c.version === best.version && rank(c) > rank(best))))) best = c
  }
  return best
}

export function planRecovery (input: RecoveryInput): RecoveryPlan {
  const newest = newestCopy(input.copies, input.target)
  const missing = [...new Set(input.holders.map(h => h.node))].filter(n => !input.answered.has(n)).sort()
  const covered = uncovered(input.holders, input.answered, input.copies, newest?.epoch ?? -1).length === 0
  // a primary still running on the target may be a deposed one (cut off while a later epoch
  // ran elsewhere): it is adopted only once no newer epoch's copy can be on a missing holder
  const accepted = input.acceptLoss === true
  if (!covered && !accepted) {
    // waiting helps only while a holder is missing; a damaged copy does not come back
    if (missing.length > 0 && input.waitedMs < input.waitBoundMs) return { kind: 'wait', missing }
    return newest === undefined ? { kind: 'lost', missing } : { kind: 'lost', missing, older: newest }
  }
  // a primary running on the target in the newest epoch is adopted even if a clone reported
  // a higher version: that clone holds only this primary's states, and the inventories are
  // taken one after the other while the primary keeps serving. Replacing its state with the
  // clone's copy dropped the states it acknowledged meanwhile (the kill -9 streams test lost
  // 4 acknowledged records of a partition whose nodes were both alive)
  const runningHere = input.copies.find(c => c.running && c.node === input.target && c.damaged !== true)
  if (runningHere !== undefined && newest !== undefined && runningHere.epoch >= newest.epoch) return { kind: 'running' }
  if (newest === undefined) {
    const damaged = input.copies.some(c => c.damaged === true)
    if (accepted || (missing.length === 0 && !damaged)) return { kind: 'blank' }
    // a holder away (a new instance's clone not reached yet): recovering up to the bound, as above
    if (!damaged && input.waitedMs < input.waitBoundMs) return { kind: 'wait', missing }
    return { kind: 'lost', missing }
  }
  return newest.node === input.target ? { kind: 'promote', copy: newest, missing } : { kind: 'copy', copy: newest, missing }
}

/** What a holder's fenced inventory said, for leaseWaitUntil */
export interface FencedAnswer {
  /** when it arrived (ms, the leader's clock) */
  at: number
  /** ms since a clone there last took a state of the address, as the fence went up (Infinity: it holds no copy, so none did); undefined: not reported (an older Stem) */
  quietMs?: number
}

/**
 * Until when (ms, the leader's clock) the primary `plan` starts in placement `epoch` must
 * not serve: the latest a deposed primary may still answer on a confirmation of a clone
 * other than the one promoted (which waits out the lease it granted itself: clones.ts
 * promote); a moment already past (0 at the least) when there is nothing to wait for. A
 * primary answers only on a confirmation it asked for less than
 * `leaseMs` ago (fencing.ts leaseHolds), and the inventories fenced every holder that
 * answered (no confirmation of an older epoch after them):
 *   - a clone that answered last took a state `quietMs` before its answer arrived (a
 *     state taken before the fence may be confirmed after it; one given before a drop or a
 *     restart still counts), so a lease on it ends `leaseMs` after that at the latest — at
 *     once for one idle for a lease;
 *   - one that did not answer may have taken the fence and lost the answer: a lease from
 *     the inventories' end (`fencedAt`), unless the ask never left (`notSent`: no stream
 *     to it), when no wait would bound what it confirms anyway;
 *   - a clone placed in `epoch` itself follows the new primary only (its hold names it:
 *     clones.ts followedPrimary), so it confirmed nothing to the old one.
 * A start from another node's copy waits a whole lease from the inventories (sim:mesh seed
 * 10955 of the partition profile, two clones: the old primary answered on its other
 * clone's confirmation after the new one, started from that clone's copy, had answered).
 * Chaos seed 11 (`--kinds kill-primary,kill-leader`): a kill -9 of the node that was both
 * the primary and the app's leader waited a lease for clones of earlier epochs, idle for
 * long, and for the dead primary's own clone of the epoch before, which no ask reached.
 */
export function leaseWaitUntil (plan: RecoveryPlan, holders: Holder[], target: string, epoch: number, answers: Map<string, FencedAnswer>, notSent: Set<string>, fencedAt: number, leaseMs: number): number {
  if (plan.kind === 'copy') return fencedAt + leaseMs
  if (plan.kind !== 'promote') return 0
  let until = 0
  for (const h of holders) {
    if (h.role !== 'clone' || h.node === target || h.epoch >= epoch) continue
    const answer = answers.get(h.node)
    if (answer !== undefined) until = Math.max(until, answer.at - (answer.quietMs ?? 0) + leaseMs)
    else if (!notSent.has(h.node)) until = Math.max(until, fencedAt + leaseMs)
  }
  return until
}

/**
 * Whether a failover may promote the clone on `node` in placement epoch `epoch` at once,
 * without asking the other holders: in the epoch before, `node` was its only clone (every
 * reply of that epoch waited for its confirmation), and the copy it holds (`held`, from its
 * inventory) has a state from that epoch's primary, which started from the newest copy.
 * Otherwise a newer state may be elsewhere: with two clones a reply waited for one only;
 * a clone placed lately may hold nothing yet (a shard's warm step, then a kill -9 before
 * the first push); and when the epoch before never ran (its primary never started: a
 * partition), the newest state is from an older epoch, confirmed by another clone
 * (sim:mesh seed 536 of the partition profile). Then recovery asks every holder.
 */
export function promotionIsDirect (holders: Holder[], epoch: number, node: string, held: { version: number, epoch: number } | undefined): boolean {
  const before = Math.max(-1, ...holders.filter(h => h.epoch < epoch).map(h => h.epoch))
  // the instance's first placement: nothing was acknowledged before it
  if (before < 0) return true
  const clones = holders.filter(h => h.epoch === before && h.role === 'clone')
  if (!clones.some(h => h.node === node) || clones.some(h => h.node !== node)) return false
  return held !== undefined && held.version >= 0 && held.epoch >= before
}

/**
 * The epochs from `from` on whose state may be on a holder that did not answer only. Its
 * clones cover an epoch only with a copy of that epoch: a later placement of the same
 * epoch may have dropped them, and the primary then acknowledged on its own fsync (sim:mesh
 * seed 1857: the dropped clone answered with nothing, and recovery adopted a deposed
 * primary's older state over the acknowledged one). Clones placed side by side must each
 * hold one: a reply waited for either, so the one a later placement dropped may have held
 * the newest (sim:mesh seed 1321 of the partition profile, two clones: the primary, cut off
 * from one clone, acknowledged 2 adds on the other, which then left gracefully and dropped
 * its copy; the first clone's older copy was promoted). And the copy must be on a clone of
 * the epoch's latest placement: the primary sends a clone its whole state once it learns of
 * it, and replies wait for it from then on, but a clone an earlier placement of the epoch
 * dropped holds only what came before (sim:mesh seed 135 with every fault but loss: the
 * placement left the primary without clones, it acknowledged an add alone and crashed, and
 * an earlier clone's older copy was adopted). A clone placed again after a drop in the same
 * epoch covers nothing: it may have kept its copy from before, never having heard of the
 * drop (seed 21599 of the partition profile: the same, then the first clone placed again,
 * which the cut-off primary never reached, and its copy from before counted).
 */
function uncovered (holders: Holder[], answered: Set<string>, copies: Copy[], from: number): number[] {
  const epochs = [...new Set(holders.map(h => h.epoch))].filter(e => e >= from)
  return epochs.filter(e => {
    const of = holders.filter(h => h.epoch === e)
    const primaries = of.filter(h => h.role === 'primary')
    const clones = of.filter(h => h.role === 'clone')
    // a primary that answered covers its epoch, unless its copy is damaged: what it
    // acknowledged is then gone from it, and an older copy would drop it in silence
    const damaged = (node: string): boolean => copies.some(c => c.node === node && c.damaged === true)
    if (primaries.some(h => answered.has(h.node) && !damaged(h.node))) return false
    // one clone at a time: a clone the primary learned of got its whole state first, and every
    // reply waited for it from then on, so one a later placement dropped holds nothing newer
    // and need not answer (its node may be gone for good: a kill -9, then a new clone placed).
    // Clones placed side by side must all answer: a reply waited for either
    const mustAnswer = clones.some(h => h.paired === true) ? clones : clones.filter(h => h.dropped !== true)
    if (clones.length === 0 || mustAnswer.some(h => !answered.has(h.node))) return true
    const holds = (node: string): boolean => copies.some(c => c.node === node && c.epoch >= e && c.damaged !== true)
    if (clones.some(h => h.paired === true && !holds(h.node))) return true
    if (clones.some(h => h.dropped !== true && h.readded !== true && holds(h.node))) return false
    // every clone the epoch ever had answered with a copy of it, and its primary never
    // acknowledged alone: each acknowledged state was confirmed by one of them, whose copy
    // (newer only) holds it, so the newest among them holds them all, a clone placed again
    // included (chaos seed 7: its replacement was dropped too, and recovery waited 60 s
    // for a stalled primary although the clone held everything)
    return primaries.length === 0 || !primaries.every(h => h.alone === false) || !clones.every(h => answered.has(h.node) && holds(h.node))
  })
}

/** When the leader began waiting for an instance's copies (its `recovering` time). */
export interface WaitMark {
  /** what is being recovered: the instance's epoch and target; a change starts a new wait */
  episode: string
  since: number
  /** the last round that looked for the copies */
  seen: number
}

/** a round later than this after the last one starts a new wait (leadership lost and won back, or a restart) */
export const WAIT_GAP_MS = 10_000

/**
 * The wait mark after a round at `now`. A wait carried over from another episode would
 * cut the new one short: a leader that waited for epoch 1's copies, lost its leadership and
 * won it back for epoch 3 would find its bound long passed and start from an older copy
 * while a holder of the newer one is still missing (sim:mesh seed 8981).
 */
export function nextWaitMark (mark: WaitMark | undefined, episode: string, now: number, gapMs = WAIT_GAP_MS): WaitMark {
  if (mark === undefined || mark.episode !== episode || now - mark.seen > gapMs) return { episode, since: now, seen: now }
  return { episode, since: mark.since, seen: now }
}
