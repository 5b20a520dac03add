// Autoscale of a stream consumer by its lag (manifest `autoscale: { min, max, lag }`): the
// pure decision the app's leader takes from each sample of the consumer group's lag (the
// records of its streams not yet acknowledged, over every partition). One replica more
// once the lag has stayed over `lag` for `sustainMs`, one fewer once it has stayed idle
// (at most IDLE_SHARE of `lag`) for `idleMs`; between the two nothing moves (hysteresis),
// and after a change nothing moves for `cooldownMs`, so the moved partitions settle and
// the lag is measured on the new replicas before the next step. An instance placement
// could not put anywhere (the mesh's contributed capacity is used up) stops the growth and,
// after the cooldown, takes the step back; that count is not tried again for FULL_HOLD
// cooldowns (a lag that stays high must not grow and shrink the cell over and over).
import type { AutoscaleSpec } from './stream-manifest.js'

export interface AutoscaleTiming {
  /** ms the lag must stay over the threshold before one replica is added */
  sustainMs: number
  /** ms the group must stay idle before one replica is removed */
  idleMs: number
  /** ms after a change before the next one */
  cooldownMs: number
}

export const defaultAutoscaleTiming: AutoscaleTiming = { sustainMs: 5000, idleMs: 60_000, cooldownMs: 15_000 }

/** lag at most this share of the threshold counts as idle */
export const IDLE_SHARE = 0.1
/** cooldowns during which a count that found no room is not grown to again */
export const FULL_HOLD = 4

/** what the leader remembers of one autoscaled cell between samples */
export interface AutoscaleMemory {
  /** since when the lag has been over the threshold, or idle (undefined: not now) */
  overSince?: number
  idleSince?: number
  /** when the last change was decided */
  changedAt?: number
  /** the last count an instance found no room at, and when it was taken back */
  full?: { replicas: number, at: number }
}

export interface AutoscaleSample {
  /** the group's lag now: records not yet acknowledged, summed over its partitions */
  lag: number
  /** the cell's instances that placement could not put on any node */
  unplaced: number
}

export interface AutoscaleDecision {
  replicas: number
  memory: AutoscaleMemory
  /** why the replicas change (for the log), when they do */
  reason?: string
}

/** The replicas `spec` wants now, given the current `replicas`, this sample and what came before. */
export function decideAutoscale (spec: AutoscaleSpec, replicas: number, sample: AutoscaleSample, before: AutoscaleMemory, now: number, timing: AutoscaleTiming = defaultAutoscaleTiming): AutoscaleDecision {
  const memory: AutoscaleMemory = { ...before }
  if (sample.lag > spec.lag) {
    memory.overSince ??= now
    memory.idleSince = undefined
  } else if (sample.lag <= Math.floor(spec.lag * IDLE_SHARE)) {
    memory.idleSince ??= now
    memory.overSince = undefined
  } else {
    memory.overSince = undefined
    memory.idleSince = undefined
  }
  const change = (to: number, reason: string, full = memory.full): AutoscaleDecision => ({ replicas: to, memory: { changedAt: now, ...(full !== undefined ? { full } : {}) }, reason })
  // out of bounds (a `stem scale` or an older manifest): back within them at once
  if (replicas < spec.min) return change(spec.min, `below min ${spec.min}`)
  if (replicas > spec.max) return change(spec.max, `above max ${spec.max}`)
  if (memory.changedAt !== undefined && now - memory.changedAt < timing.cooldownMs) return { replicas, memory }
  if (sample.unplaced > 0) {
    return replicas > spec.min ? change(replicas - 1, `${sample.unplaced} instance(s) found no room`, { replicas, at: now }) : { replicas, memory }
  }
  const full = memory.full !== undefined && replicas + 1 >= memory.full.replicas && now - memory.full.at < timing.cooldownMs * FULL_HOLD
  if (memory.overSince !== undefined && now - memory.overSince >= timing.sustainMs && replicas < spec.max && !full) {
    return change(replicas + 1, `lag ${sample.lag} over ${spec.lag} for ${now - memory.overSince} ms`)
  }
  if (memory.idleSince !== undefined && now - memory.idleSince >= timing.idleMs && replicas > spec.min) {
    return change(replicas - 1, `lag ${sample.lag}, idle for ${now - memory.idleSince} ms`)
  }
  return { replicas, memory }
}
