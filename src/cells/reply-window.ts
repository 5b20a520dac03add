// An instance's reply window: the recorded results of the asks it answered, by message key
// (sender peer id + message id), so a retried ask runs once. It travels with the state it
// belongs to: in each 'cell:snapshot' (to clones, in the same push as the state version,
// and to disk, in the same fsynced file), and back in on promotion and on restart
// (TransformOptions.replies). So a retry that reaches a new primary after a failover or a
// restart gets the recorded result instead of running again (docs/cells.md "Delivery
// semantics").
//
// Bounded by count, age and size: the oldest entries go first. A result longer than
// MAX_RESULT_CHARS is kept as "ran" without its text: a retry of it is told so, never run.
//
// Encoded as JSON text: [[digest, at, text | null], …], oldest first, where digest is the
// first 128 bits of sha256(key), base64url: short (the window goes with every state) and
// without the senders' peer ids.
import { createHash } from 'node:crypto'

/**
 * An answer whose new state has not reached a clone (or the disk) yet. The ask did run and
 * its result is in the reply window; a retry with the same message id waits for the gate
 * again and then gets that result. No other dedupe may record this error as the ask's answer,
 * or every retry would get it until that record expired.
 */
export class StateNotSafeError extends Error {}

export interface ReplyWindowBounds {
  /** entries kept (default 256) */
  maxEntries: number
  /** ms an entry is kept after its answer (default 10 min) */
  maxAgeMs: number
  /** characters of all recorded results together (default 1 MiB) */
  maxChars: number
}

export const REPLY_WINDOW_BOUNDS: ReplyWindowBounds = { maxEntries: 256, maxAgeMs: 10 * 60_000, maxChars: 1024 * 1024 }
/** results longer than this are recorded as ran, without their text */
export const MAX_RESULT_CHARS = 64 * 1024
const DIGEST = /^[A-Za-z0-9_-]{22}$/
const DIGEST_CHARS = 22

/** the digest a key is kept under */
function digestOf (key: string): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, DIGEST_CHARS)
}

interface Entry {
  at: number
  /** the result's reply text; null: it ran, the text was too long to keep */
  text: string | null
}

export class ReplyWindow {
  private readonly entries = new Map<string, Entry>()
  private chars = 0

  constructor (private readonly bounds: ReplyWindowBounds = REPLY_WINDOW_BOUNDS) {}

  get size (): number {
    return this.entries.size
  }

  /** The recorded result of `key` (text, or null if too long to keep), or undefined if none is held. */
  get (key: string, now = Date.now()): string | null | undefined {
    this.prune(now)
    return this.entries.get(digestOf(key))?.text
  }

  /** Records the result `text` of the ask `key`, answered at `now` (null: it ran, its text is not kept). */
  record (key: string, text: string | null, now = Date.now()): void {
    this.restore(digestOf(key), text, now)
  }

  /** An entry under its digest (decodeReplyWindow's way in). */
  restore (digest: string, text: string | null, now: number): void {
    this.delete(digest)
    const kept = text !== null && text.length <= MAX_RESULT_CHARS ? text : null
    this.entries.set(digest, { at: now, text: kept })
    this.chars += kept?.length ?? 0
    this.prune(now)
    while (this.entries.size > this.bounds.maxEntries || this.chars > this.bounds.maxChars) this.delete(this.entries.keys().next().value as string)
  }

  /** JSON text of the entries still within the window, oldest first. */
  encode (now = Date.now()): string {
    this.prune(now)
    return JSON.stringify([...this.entries].map(([key, e]) => [key, e.at, e.text]))
  }

  private delete (key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    this.chars -= entry.text?.length ?? 0
  }

  /** Drops the entries older than the window's age. */
  prune (now: number): void {
    const oldest = now - this.bounds.maxAgeMs
    for (const [key, entry] of this.entries) {
      if (entry.at > oldest) break
      this.delete(key)
    }
  }
}

/** the most characters an encoded window within `bounds` can take (what decode accepts) */
export function maxEncodedChars (bounds: ReplyWindowBounds = REPLY_WINDOW_BOUNDS): number {
  // each entry: its key, its time, its text escaped (up to 6 characters each), brackets and commas
  return bounds.maxEntries * (DIGEST_CHARS + 40) + bounds.maxChars * 6
}

/**
 * Parses an encoded window (a state file's, a clone push's); throws a one-line reason.
 * Entries older than the window's age are dropped; the times must be in order.
 */
export function decodeReplyWindow (text: string, now = Date.now(), bounds: ReplyWindowBounds = REPLY_WINDOW_BOUNDS): ReplyWindow {
  if (text.length > maxEncodedChars(bounds)) throw new Error(`reply window is too large (${text.length} characters)`)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new Error('reply window is not JSON (truncated?)')
  }
  if (!Array.isArray(raw)) throw new Error('reply window is not a JSON array')
  if (raw.length > bounds.maxEntries) throw new Error(`reply window has ${raw.length} entries, at most ${bounds.maxEntries}`)
  const window = new ReplyWindow(bounds)
  let last = 0
  let chars = 0
  for (const [i, item] of raw.entries()) {
    if (!Array.isArray(item) || item.length !== 3) throw new Error(`reply window entry ${i} is not [key, time, text]`)
    const [digest, at, result] = item as [unknown, unknown, unknown]
    if (typeof digest !== 'string' || !DIGEST.test(digest)) throw new Error(`reply window entry ${i}: key is not a ${DIGEST_CHARS}-character digest`)
    if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < last) throw new Error(`reply window entry ${i}: time is not a whole number of ms in order`)
    if (result !== null && (typeof result !== 'string' || result.length > MAX_RESULT_CHARS)) throw new Error(`reply window entry ${i}: result is not text of at most ${MAX_RESULT_CHARS} characters`)
    const kept = result as string | null
    chars += kept?.length ?? 0
    if (chars > bounds.maxChars) throw new Error(`reply window results exceed ${bounds.maxChars} characters`)
    last = at
    window.restore(digest, kept, at)
  }
  window.prune(now)
  return window
}
