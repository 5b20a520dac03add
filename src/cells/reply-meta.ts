// What a reply says besides its result or error message, carried inside the reply text
// itself so every layer that moves reply texts (cell host link, the runtime, the dedupe
// window, the cell protocol between nodes) keeps it without a field of its own:
//
//   reply text = head + '\n' + JSON trailer   (or just head)
//
// head is the result's JSON text or the error message. JSON.stringify never writes a raw
// newline and error messages from cells have their control characters replaced, so the
// first newline is the trailer's start. Only the cell host writes trailers (never cell
// code): on errors the cell address, method, stack (mapped to the original sources) and the
// status of `stem.error`; on results the status and headers of `stem.response`.
// Consumers split it off: results are parsed from the head alone, errors become a
// CellError whose message is the head.

/** an error a cell's method threw */
export interface CellErrorInfo {
  /** app/cell#i */
  cell: string
  method: string
  /** HTTP status of `stem.error(status, message)`, 400–599 */
  status?: number
  /** `at …` lines in the original source files, when known */
  stack?: string
}

/** `stem.response(status, body, headers)`: how the gateway answers */
export interface ResponseMeta {
  status: number
  headers: Record<string, string>
}

export interface ReplyTrailer {
  error?: CellErrorInfo
  response?: ResponseMeta
}

const MAX_STACK_CHARS = 8192

/** head + trailer (head alone without one) */
export function withTrailer (head: string, trailer: ReplyTrailer | undefined): string {
  if (trailer === undefined || (trailer.error === undefined && trailer.response === undefined)) return head
  return `${head.replace(/\n/g, ' ')}\n${JSON.stringify(trailer)}`
}

/** The head and the trailer, if the text has a valid one (an invalid one is dropped). */
export function splitReply (text: string): { head: string, trailer?: ReplyTrailer } {
  const cut = text.indexOf('\n')
  if (cut < 0) return { head: text }
  const head = text.slice(0, cut)
  let parsed: unknown
  try { parsed = JSON.parse(text.slice(cut + 1)) } catch { return { head } }
  return { head, trailer: checkTrailer(parsed) }
}

function checkTrailer (value: unknown): ReplyTrailer | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const v = value as Record<string, unknown>
  const out: ReplyTrailer = {}
  const e = v.error as Record<string, unknown> | undefined
  if (e !== null && typeof e === 'object' && typeof e.cell === 'string' && typeof e.method === 'string') {
    out.error = {
      cell: e.cell.slice(0, 200),
      method: e.method.slice(0, 200),
      ...(isErrorStatus(e.status) ? { status: e.status } : {}),
      ...(typeof e.stack === 'string' && e.stack !== '' ? { stack: e.stack.slice(0, MAX_STACK_CHARS) } : {})
    }
  }
  const r = v.response as Record<string, unknown> | undefined
  if (r !== null && typeof r === 'object' && typeof r.status === 'number' && headersProblem(r.headers) === undefined && statusProblem(r.status) === undefined) {
    out.response = { status: r.status, headers: r.headers as Record<string, string> }
  }
  return out.error === undefined && out.response === undefined ? undefined : out
}

export function isErrorStatus (status: unknown): status is number {
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
}

/** why `status` cannot be a `stem.response` status (200–599), or undefined */
export function statusProblem (status: unknown): string | undefined {
  return typeof status === 'number' && Number.isInteger(status) && status >= 200 && status <= 599 ? undefined : `status must be a whole number 200–599, got ${String(status).slice(0, 40)}`
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/
/** the gateway sets these itself */
const RESERVED = new Set(['content-length', 'transfer-encoding', 'connection', 'content-type', 'x-request-id', 'upgrade', 'keep-alive', 'trailer'])

/** why `headers` cannot be a `stem.response`'s headers, or undefined */
export function headersProblem (headers: unknown): string | undefined {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return 'headers must be an object of name: string value'
  const entries = Object.entries(headers)
  if (entries.length > 50) return 'at most 50 headers'
  for (const [name, value] of entries) {
    if (!TOKEN.test(name)) return `header name ${JSON.stringify(name.slice(0, 40))} is not a valid HTTP header name`
    if (RESERVED.has(name.toLowerCase())) return `header ${name} is set by the gateway`
    if (typeof value !== 'string' || value.length > 4096 || /[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return `header ${name} must be a string of at most 4096 characters without control characters`
  }
  return undefined
}

/** The error text a message gets when its cell crashed on it (past its CPU time or memory limit, a fault in the isolate); the cell starts again from its last state. */
export function crashText (address: string, reason: string): string {
  return `cell ${address} crashed: ${reason}`
}

/** whether `err` says a cell crashed on this very message (crashText), not that its cell host died or that it could not be reached */
export function isCrash (err: unknown): boolean {
  return err instanceof Error && /^cell \S+ crashed: /.test(err.message)
}

/** The error text of an ask whose deadline passed before its cell answered. Whether it ran is not known, so it says how to retry safely. */
export function timeoutText (address: string, afterMs?: number): string {
  return `ask to ${address} timed out${afterMs !== undefined ? ` after ${afterMs} ms` : ''} (it may or may not have run: retry with the same messageId)`
}

/** whether a failed reply text is a runtime's timeoutText, not an error a cell threw (those carry a trailer) */
export function isTimeoutReply (text: string): boolean {
  const { head, trailer } = splitReply(text)
  return trailer === undefined && /^ask to \S+ timed out( after \d+ ms)? \(it may or may not have run/.test(head)
}

/** An error a cell threw, as callers see it: message, cell, method, and the HTTP status and stack when known. */
export class CellError extends Error {
  override name = 'CellError'
  constructor (message: string, readonly cellError: CellErrorInfo) { super(message) }
}

/** The error a failed reply text stands for: a CellError when the cell host wrote a trailer, else a plain Error. */
export function errorFromReply (text: string): Error {
  const { head, trailer } = splitReply(text)
  return trailer?.error !== undefined ? new CellError(head, trailer.error) : new Error(head)
}

/** The reply text of `err` (the inverse of errorFromReply): errors with a `cellError` (CellError, MessagingError) keep it. */
export function replyOfError (err: unknown): string {
  const message = (err as Error | undefined)?.message ?? String(err)
  const info = (err as { cellError?: CellErrorInfo } | undefined)?.cellError
  return info !== undefined ? withTrailer(message, { error: info }) : message
}
