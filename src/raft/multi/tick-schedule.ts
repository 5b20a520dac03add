// When a raft host's tick timer next fires. While any group ticks (it is not quiet, or it
// rejoins with a lost log) the timer fires every tick. When every group is quiet, ticking
// does nothing but the per-peer liveness work — send a beacon to a peer owed one, notice a
// peer that fell silent — so the timer sleeps until that work next falls due instead of
// waking every tick; activity (a wake, a new group) arms it for the next tick again.

export interface TickScheduleInput {
  tickMs: number
  /** some group needs ticking */
  active: boolean
  now: number
  /** when the liveness work next falls due (PeerLiveness.nextDue; Infinity: nothing tracked) */
  livenessDue: number
  /** longest sleep, a safety net for work the host did not foresee */
  maxSleepMs: number
}

/** ms until the next tick: one tick while active, else until the liveness work is due, within [tickMs, maxSleepMs] */
export function nextTickDelay (s: TickScheduleInput): number {
  if (s.active) return s.tickMs
  const untilDue = Math.ceil(s.livenessDue - s.now)
  return Math.min(Math.max(s.tickMs, Number.isFinite(untilDue) ? untilDue : s.maxSleepMs), Math.max(s.tickMs, s.maxSleepMs))
}
