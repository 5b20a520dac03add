// Per-cell limits. The first three come from the app manifest (SPEC §5); the rest are
// runtime bounds every cell gets, overridable by the node.

export interface CellLimits {
  /** isolate memory limit, bytes (isolated-vm takes MiB, minimum 8) */
  memory: number
  /** CPU time per message, ms */
  timeout: number
  /** queued messages (including the one running) before senders are refused */
  mailbox: number
}

export interface RuntimeBounds {
  /** wall-clock bound on one message, including the asks it awaits, ms */
  messageWallTime: number
  /** wall-clock bound on one pending `stem.ask`, ms */
  askTimeout: number
  /** largest argument list / result / state, as JSON text, characters */
  maxMessageBytes: number
  /** outgoing asks + tells one cell may have pending at once */
  maxPendingAsks: number
  /** crashes within `crashWindow` after which a cell is marked failed */
  maxCrashes: number
  /** ms */
  crashWindow: number
}

export const DEFAULT_LIMITS: CellLimits = {
  memory: 32 * 1024 * 1024,
  timeout: 500,
  mailbox: 1000
}

export const DEFAULT_BOUNDS: RuntimeBounds = {
  messageWallTime: 30_000,
  askTimeout: 10_000,
  maxMessageBytes: 1024 * 1024,
  maxPendingAsks: 1000,
  maxCrashes: 5,
  crashWindow: 60_000
}

const MIB = 1024 * 1024

/**
 * The largest arguments (JSON characters) a cell with this memory limit is delivered: a
 * value takes several times its JSON text on the isolate heap (two-byte strings, object
 * headers, the text and the parsed value at once) beside the cell's own state, so a
 * message past 1/32 of the memory limit could end the cell on its memory limit (a 16 MiB
 * cell takes 512 KiB). Such a message is refused before delivery instead.
 */
export function maxArgsChars (limits: CellLimits, bounds: RuntimeBounds): number {
  return Math.min(bounds.maxMessageBytes, Math.floor(limits.memory / 32))
}

/** isolated-vm's memoryLimit in MiB for a byte limit (isolated-vm refuses < 8). */
export function isolateMemoryMiB (bytes: number): number {
  return Math.max(8, Math.ceil(bytes / MIB))
}

/** Throws a one-line error naming the field if a limit is not usable. */
export function checkLimits (limits: CellLimits): CellLimits {
  const { memory, timeout, mailbox } = limits
  if (!Number.isSafeInteger(memory) || memory < 8 * MIB || memory > 4096 * MIB) throw new Error(`limit memory must be between 8 MiB and 4 GiB, got ${String(memory)}`)
  if (!Number.isSafeInteger(timeout) || timeout < 1 || timeout > 600_000) throw new Error(`limit timeout must be 1..600000 ms, got ${String(timeout)}`)
  if (!Number.isSafeInteger(mailbox) || mailbox < 1 || mailbox > 1_000_000) throw new Error(`limit mailbox must be 1..1000000, got ${String(mailbox)}`)
  return { memory, timeout, mailbox }
}
