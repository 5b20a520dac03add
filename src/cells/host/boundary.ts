// The cell host's side of the isolate boundary: everything an isolate returns is
// untrusted text. The bootstrap (isolate-bootstrap.ts) packs results, states, asks and
// tells, but cell code runs in the same isolate and may have defeated it, so each field is
// checked here before the host acts on it: the packing, JSON validity, size and nesting
// depth, and control characters in texts. A malformed answer crashes the cell (it is
// rebuilt from its last good state); nothing malformed leaves the host.
import { jsonBoundsError } from '../../util/bounded-json.js'

/** What one entry into the isolate produced: result + '\x03' + outgoing + '\x03' + finished. */
export interface EntryResult {
  result: string
  /** packed outgoing asks/tells, '' if none */
  out: string
  /** packed finished async messages, '' if none */
  finished: string
}

/** A cell's stem.ask/stem.tell, as packed by the bootstrap. */
export interface Outgoing {
  askId: number
  address: string
  method: string
  argsJson: string
  tell: boolean
}

/** A message's outcome: its result and the state after it, or its error (the state is then unchanged, but for a reminder's firing). */
export type Outcome = { ok: true, value: string, state: string } | { ok: false, error: string, state?: string }

/** Longest error text or log line passed on (the bootstrap cuts messages at 2000 and logs at 8192). */
export const MAX_ERROR_TEXT = 4096
export const MAX_LOG_TEXT = 8192 + 64

/** A malformed answer from an isolate: why, for the crash reason. */
export class Malformed {
  constructor (readonly reason: string) {}
}

const CONTROL = /[\x00-\x1f]/
const CONTROL_ALL = /[\x00-\x1f]/g

/** Splits an entry's answer into its three parts, or says why it cannot be. */
export function splitEntry (text: unknown): EntryResult | Malformed {
  if (typeof text !== 'string') return new Malformed('returned a malformed answer: not a string')
  const second = text.lastIndexOf('\x03')
  const first = second > 0 ? text.lastIndexOf('\x03', second - 1) : -1
  if (first < 0) return new Malformed('returned a malformed answer: no trailers')
  return { result: text.slice(0, first), out: text.slice(first + 1, second), finished: text.slice(second + 1) }
}

/** One packed outgoing record 'askId\x01address\x01method\x01argsJson\x01t|a' (found with indexOf: this runs per ask). */
export function parseOutgoing (record: string, maxBytes: number): Outgoing | Malformed {
  const a = record.indexOf('\x01')
  const b = a < 0 ? -1 : record.indexOf('\x01', a + 1)
  const c = b < 0 ? -1 : record.indexOf('\x01', b + 1)
  const d = record.length - 2
  if (c < 0 || d <= c || record.charCodeAt(d) !== 1) return new Malformed('sent a malformed message: wrong number of fields')
  const askId = Number(record.slice(0, a))
  if (!Number.isSafeInteger(askId) || askId <= 0) return new Malformed('sent a malformed message: bad ask id')
  const kind = record[d + 1]
  if (kind !== 't' && kind !== 'a') return new Malformed('sent a malformed message: neither ask nor tell')
  const address = record.slice(a + 1, b)
  const method = record.slice(b + 1, c)
  if (address.length === 0 || address.length > 200 || CONTROL.test(address)) return new Malformed('sent a malformed message: bad address')
  if (method.length === 0 || method.length > 200 || CONTROL.test(method)) return new Malformed('sent a malformed message: bad method name')
  // valid JSON has no control character: the arguments hold no further separator
  const argsJson = record.slice(c + 1, d)
  const args = checkJson(argsJson, 'arguments', maxBytes)
  if (args instanceof Malformed) return args
  if (!Array.isArray(args)) return new Malformed('sent a malformed message: arguments are not an array')
  return { askId, address, method, argsJson, tell: kind === 't' }
}

/**
 * A message's result record: 'o' + result JSON + '\0' + state JSON, or 'e' + error + '\0' + state;
 * an empty state stands for the state the host holds (unchanged).
 * A result or error may end with '\n' + a JSON trailer (cells/reply-meta.ts: status,
 * headers, stack), checked here as JSON too. `lastState` is the state the host holds: an
 * unchanged state is not checked again, and an error never changes it (whatever state the
 * isolate reports with it), but with `stateOnError`: a reminder's firing, which is consumed
 * (its reminder gone from the state) even when its method throws.
 */
export function parseOutcome (text: string, lastState: string, maxBytes: number, stateOnError = false): Outcome | Malformed {
  const cut = text.lastIndexOf('\0')
  if (cut < 0) return new Malformed('returned a malformed answer: no state')
  if (text[0] !== 'o' && text[0] !== 'e') return new Malformed('returned a malformed answer: neither result nor error')
  const value = text.slice(1, cut)
  const nl = value.indexOf('\n')
  const head = nl < 0 ? value : value.slice(0, nl)
  const trailer = nl < 0 ? undefined : checkJson(value.slice(nl + 1), 'reply trailer', maxBytes)
  const trailerOk = trailer !== undefined && !(trailer instanceof Malformed) && trailer !== null && typeof trailer === 'object'
  // '': the state did not change (never a state: that is a JSON object)
  const state = cut === text.length - 1 ? lastState : text.slice(cut + 1)
  if (text[0] === 'e') {
    const error = cleanText(head, MAX_ERROR_TEXT) + (trailerOk ? value.slice(nl) : '')
    if (!stateOnError || state === lastState) return { ok: false, error }
    const reason = stateError(state, maxBytes)
    return reason !== undefined ? new Malformed(reason) : { ok: false, error, state }
  }
  const checked = checkJson(head, 'result', maxBytes)
  if (checked instanceof Malformed) return checked
  if (nl >= 0 && !trailerOk) return new Malformed('returned a malformed reply trailer')
  if (state !== lastState) {
    const reason = stateError(state, maxBytes)
    if (reason !== undefined) return new Malformed(reason)
  }
  return { ok: true, value, state }
}

/** Why `state` is not a cell state (the JSON text of an object within the bounds), or undefined. */
export function stateError (state: string, maxBytes: number): string | undefined {
  const parsed = checkJson(state, 'state', maxBytes)
  if (parsed instanceof Malformed) return parsed.reason
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'returned a malformed state: not a JSON object'
  return undefined
}

/** A text from the isolate made safe to pass on: control characters replaced, length capped. */
export function cleanText (text: string, max: number): string {
  const capped = text.length > max ? text.slice(0, max) : text
  return CONTROL.test(capped) ? capped.replace(CONTROL_ALL, ' ') : capped
}

function checkJson (text: string, what: string, maxBytes: number): unknown {
  const reason = jsonBoundsError(text, what, { maxBytes })
  if (reason !== undefined) return new Malformed(`returned a malformed ${what}: ${reason}`)
  try {
    return JSON.parse(text)
  } catch {
    return new Malformed(`returned a malformed ${what}: not valid JSON`)
  }
}
