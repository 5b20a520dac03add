// Durable reminders (SPEC §4 `stem.schedule`): the node's side. A cell's pending reminders
// live in its state text, under one reserved top-level field (REMINDERS_FIELD), so they are
// persisted, replicated to clones, restored and rolled back with the state: same write,
// same fsync, same version. The isolate keeps the table (isolate-bootstrap.ts: schedule,
// cancel, reminders, and the firing that removes one); the node reads the table from each
// new state and fires what is due (runtime.ts). The state text comes from the isolate, so
// it is untrusted here: entries are checked and bad ones named, never fired.

/** the state's top-level field that holds the pending reminders (a cell field of that name is refused) */
export const REMINDERS_FIELD = 'stem:reminders'
/** pending reminders per instance */
export const MAX_REMINDERS = 1000
/** the earliest a reminder may be due, ms from the `stem.schedule` call */
export const MIN_REMINDER_DELAY_MS = 10
/** a `when` below this is a delay in ms, from it on a time in ms since the epoch (2001-09-09) */
export const EPOCH_WHEN_FROM = 1e12
/** a reminder whose firing failed without its cell consuming it (crash, host restart, full mailbox) is fired again after this */
export const REMINDER_RETRY_MS = 1000
/** firings of one reminder that failed that way, after which it is dropped unrun (a reminder whose method always crashes its cell must not fail the cell) */
export const MAX_REMINDER_ATTEMPTS = 3

const ID = /^[A-Za-z0-9_-]{1,64}$/
const CONTROL = /[\x00-\x1f]/
/** Date's largest time */
const MAX_TIME = 8.64e15

export interface Reminder {
  id: string
  /** ms since the epoch */
  due: number
  method: string
  /** JSON text of the argument array */
  args: string
}

export interface ParsedReminders {
  /** in firing order: due time, then id */
  reminders: Reminder[]
  /** one line per entry that was not used, naming why */
  problems: string[]
}

/** The reminders a cell's state text holds (none without the field: the state is then not parsed). */
export function remindersOfState (state: string): ParsedReminders {
  if (!state.includes(`"${REMINDERS_FIELD}"`)) return { reminders: [], problems: [] }
  let parsed: unknown
  try {
    parsed = JSON.parse(state)
  } catch {
    return { reminders: [], problems: ['state is not JSON text'] }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.hasOwn(parsed, REMINDERS_FIELD)) return { reminders: [], problems: [] }
  return checkReminders((parsed as Record<string, unknown>)[REMINDERS_FIELD])
}

/**
 * The end of a state text from its last `"stem:reminders":` on, '' without one: the
 * isolate writes the field last, so two states with the same tail hold the same reminders
 * (a name inside a nested value ends in more closing brackets than the field's tail).
 */
export function remindersTail (state: string): string {
  const at = state.lastIndexOf(`"${REMINDERS_FIELD}":`)
  return at < 0 ? '' : state.slice(at)
}

/** Checks a persisted reminder table; keeps the well-formed entries (the first MAX_REMINDERS by due time). */
export function checkReminders (raw: unknown): ParsedReminders {
  if (!Array.isArray(raw)) return { reminders: [], problems: [`${REMINDERS_FIELD} is not an array`] }
  const problems: string[] = []
  const seen = new Set<string>()
  const reminders: Reminder[] = []
  raw.forEach((entry: unknown, i) => {
    const why = entryProblem(entry)
    if (why !== undefined) { problems.push(`${REMINDERS_FIELD}[${i}] ${why}`); return }
    const r = entry as Reminder
    if (seen.has(r.id)) { problems.push(`${REMINDERS_FIELD}[${i}] repeats id ${r.id}`); return }
    seen.add(r.id)
    reminders.push({ id: r.id, due: r.due, method: r.method, args: r.args })
  })
  reminders.sort(byDue)
  if (reminders.length > MAX_REMINDERS) {
    problems.push(`${REMINDERS_FIELD} holds ${reminders.length} reminders, limit ${MAX_REMINDERS}: the latest ${reminders.length - MAX_REMINDERS} are ignored`)
    reminders.length = MAX_REMINDERS
  }
  return { reminders, problems }
}

function entryProblem (entry: unknown): string | undefined {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return 'is not an object'
  const { id, due, method, args } = entry as Record<string, unknown>
  if (typeof id !== 'string' || !ID.test(id)) return 'has no valid id (1–64 of A-Z a-z 0-9 _ -)'
  if (typeof due !== 'number' || !Number.isSafeInteger(due) || due < 0 || due > MAX_TIME) return `(${id}) has no valid due time`
  if (typeof method !== 'string' || method.length === 0 || method.length > 200 || CONTROL.test(method)) return `(${id}) has no valid method name`
  if (typeof args !== 'string' || !args.startsWith('[') || CONTROL.test(args)) return `(${id}) has no argument list`
  return undefined
}

function byDue (a: Reminder, b: Reminder): number {
  return a.due !== b.due ? a.due - b.due : a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * One instance's pending reminders as the node fires them: the table of its latest state,
 * the ones being fired (not fired again until their firing settles), and a retry pause
 * after a firing that failed without consuming its reminder.
 */
export class ReminderQueue {
  private pending: Reminder[] = []
  private readonly firing = new Set<string>()
  /** failed firings, by reminder id */
  private readonly failures = new Map<string, number>()
  private retryAt = 0

  get size (): number {
    return this.pending.length
  }

  /** The table of a new state (already checked: see remindersOfState). */
  replace (reminders: Reminder[]): void {
    this.pending = reminders
  }

  has (id: string): boolean {
    return this.pending.some(r => r.id === id)
  }

  /** When the next reminder not being fired is due (or may be retried), if any. */
  nextAt (): number | undefined {
    const next = this.pending.find(r => !this.firing.has(r.id))
    return next === undefined ? undefined : Math.max(next.due, this.retryAt)
  }

  /** Up to `max` reminders due at `now` that are not being fired; they count as firing from here. */
  take (now: number, max: number): Reminder[] {
    if (now < this.retryAt) return []
    const out: Reminder[] = []
    for (const r of this.pending) {
      if (r.due > now || out.length >= max) break
      if (this.firing.has(r.id)) continue
      this.firing.add(r.id)
      out.push(r)
    }
    return out
  }

  /** A firing settled; if its reminder is still pending (the cell did not consume it), retry after a pause. */
  settled (id: string, now: number): void {
    this.firing.delete(id)
    if (this.has(id)) {
      this.failures.set(id, (this.failures.get(id) ?? 0) + 1)
      this.retryAt = Math.max(this.retryAt, now + REMINDER_RETRY_MS)
    } else {
      this.failures.delete(id)
    }
  }

  /** whether the reminder failed MAX_REMINDER_ATTEMPTS times: it is to be dropped, not run */
  exhausted (id: string): boolean {
    return (this.failures.get(id) ?? 0) >= MAX_REMINDER_ATTEMPTS
  }

  /** Forget everything (the cell was reverted or failed). */
  clear (): void {
    this.pending = []
    this.firing.clear()
    this.failures.clear()
    this.retryAt = 0
  }
}
