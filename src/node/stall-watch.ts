// The stall verdict's pure logic. A stalled node (SIGSTOP, a frozen VM, a wedged event
// loop) keeps its TCP connections open, so no disconnect ever reports it: only a probe
// that goes unanswered can. Each probe round sends one probe to every watched peer that
// has none in flight; a peer is judged stalled when nothing has answered it for
// `stallMs` AND at least `minRounds` rounds ran in that time. The second condition keeps
// our own stalls out of the verdict: if this process was the one frozen, its timers ran
// late, few rounds passed, and the peer is not blamed for the silence. A round that comes
// more than stallMs/2 after the one before (this process was frozen, or its event loop
// blocked) starts every peer's silence afresh: what went unanswered while we could not
// read says nothing of the peers, and a node woken from a stall whose peers had cut it off
// meanwhile blamed them all once three rounds passed. A round more than stallMs late says
// more: the peers have judged this node stalled and cut it off, so its connections are
// stale even where it has not seen them close (`cutOff`: the caller reconnects). For
// `graceMs` after such a late round (`inGrace`) a disconnected peer whose ping fails is not
// condemned yet: when the whole machine froze, the peers woke with this node and may be
// redialling too, and a ping that fails in that crowd says nothing of the peer.
export interface StallWatchOptions {
  /** ms without an answer before a verdict (default 1500) */
  stallMs?: number
  /** probe rounds that must have run without an answer (default 3) */
  minRounds?: number
  /** ms after this node woke from a freeze during which a failed ping condemns no one (default 4 × stallMs) */
  graceMs?: number
}

interface Watched {
  lastAnswer: number
  roundOfAnswer: number
  inFlight: boolean
}

export class StallWatch {
  private readonly peers = new Map<string, Watched>()
  private round = 0
  /** when the last round ran */
  private lastRound: number | undefined
  /** when the last late round ran (this node woke from a freeze) */
  private wokeAt: number | undefined
  readonly stallMs: number
  private readonly minRounds: number
  private readonly graceMs: number

  constructor (options: StallWatchOptions = {}) {
    this.stallMs = options.stallMs ?? 1500
    this.minRounds = options.minRounds ?? 3
    this.graceMs = options.graceMs ?? 4 * this.stallMs
  }

  /**
   * A probe round at `now` over the peers to watch (others are forgotten): which peers to
   * probe now, and which have just been judged stalled (each is forgotten, so it is
   * reported once and watched afresh once it is back); `cutOff`: the ms since the round
   * before, when this node was frozen longer than stallMs.
   */
  tick (watched: Iterable<string>, now: number): { probe: string[], stalled: Array<{ id: string, silentMs: number }>, cutOff?: number } {
    this.round++
    const gap = this.lastRound === undefined ? 0 : now - this.lastRound
    const frozen = gap > this.stallMs / 2
    this.lastRound = now
    if (frozen) this.wokeAt = now
    const keep = new Set(watched)
    for (const [id, p] of this.peers) {
      if (!keep.has(id)) this.peers.delete(id)
      else if (frozen) { p.lastAnswer = now; p.roundOfAnswer = this.round }
    }
    const probe: string[] = []
    const stalled: Array<{ id: string, silentMs: number }> = []
    for (const id of keep) {
      let p = this.peers.get(id)
      if (p === undefined) {
        p = { lastAnswer: now, roundOfAnswer: this.round, inFlight: false }
        this.peers.set(id, p)
      }
      if (this.isStalled(p, now)) {
        this.peers.delete(id)
        stalled.push({ id, silentMs: now - p.lastAnswer })
      } else if (!p.inFlight) {
        p.inFlight = true
        probe.push(id)
      }
    }
    return gap > this.stallMs ? { probe, stalled, cutOff: gap } : { probe, stalled }
  }

  /**
   * The watched peers judged stalled at `now`, between rounds: the verdict need not wait for
   * the next round once a peer's silence passes stallMs (up to a probe interval sooner).
   * Counts no round, so our own stalls still blame no one.
   */
  overdue (now: number): Array<{ id: string, silentMs: number }> {
    const stalled: Array<{ id: string, silentMs: number }> = []
    for (const [id, p] of this.peers) {
      if (!this.isStalled(p, now)) continue
      this.peers.delete(id)
      stalled.push({ id, silentMs: now - p.lastAnswer })
    }
    return stalled
  }

  /** the earliest time a watched peer's silence passes stallMs if it stays silent (past for one already past it; undefined: none watched) */
  dueAt (): number | undefined {
    let due: number | undefined
    for (const p of this.peers.values()) due = Math.min(due ?? Infinity, p.lastAnswer + this.stallMs + 1)
    return due
  }

  /** `now` is within graceMs of this node's last wake from a freeze: a failed ping is no verdict yet */
  inGrace (now: number): boolean {
    return this.wokeAt !== undefined && now - this.wokeAt < this.graceMs
  }

  private isStalled (p: Watched, now: number): boolean {
    return now - p.lastAnswer > this.stallMs && this.round - p.roundOfAnswer >= this.minRounds
  }

  /** ms since `id` last answered (0 for a peer not watched) */
  silentMs (id: string, now: number): number {
    const p = this.peers.get(id)
    return p === undefined ? 0 : now - p.lastAnswer
  }

  /** The probe to `id` ended: `answered` when the peer showed it runs (anything but silence). */
  settled (id: string, answered: boolean, now: number): void {
    const p = this.peers.get(id)
    if (p === undefined) return
    p.inFlight = false
    if (answered) {
      p.lastAnswer = now
      p.roundOfAnswer = this.round
    }
  }
}
