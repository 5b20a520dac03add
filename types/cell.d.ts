// Types for cell code (docs/cells.md): the `stem` object every cell can reach, and the
// argument HTTP routes pass. Bring them into a cell's TypeScript with
//
//   import type { HttpRequest } from 'stem/cell'      // the globals come with it
//   /// <reference types="stem/cell" />               // or the globals alone
//
// Values crossing a cell's boundary (arguments, results, state) are JSON-like: see Json.
// Node code that asks cells uses the SDK instead: `import { connect } from 'stem/sdk'`.

/** What may cross a cell's boundary: plain objects, arrays, strings, finite numbers, booleans, null. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** The one argument a manifest route passes to its method. */
export interface HttpRequest<Params extends Record<string, string> = Record<string, string>, Body = unknown> {
  /** the route's `:name` segments */
  params: Params
  /** the query string; a repeated key gives an array */
  query: Record<string, string | string[]>
  /** the JSON body, null without one */
  body: Body
}

/** An error from `stem.ask`: `code` is the HTTP status the asked cell set with `stem.error`, if it did. */
export interface AskError extends Error {
  code?: number
}

/** What `stem.response` returns: return it from a method to answer HTTP with that status and headers. */
export interface StemResponse<Body = unknown> {
  readonly __stemResponse: Body
}

export interface Stem {
  /** this cell's address, `app/cell#i` (a keyed cell: its shard's) */
  readonly self: string
  /** a keyed cell's key (manifest `keyed: true`: one instance per key, `app/cell/<key>`); null for other cells */
  readonly key: string | null
  /**
   * Ask a cell (`app/cell` for any replica, `app/cell#i` for one) and get the result of its
   * method. Rejects with an AskError (the asked cell's error message; `code` its status)
   * or when no answer comes within 10 s.
   */
  ask: <T = unknown>(address: string, method: string, ...args: unknown[]) => Promise<T>
  /** One-way, at most once: no answer, no error if it is lost. */
  tell: (address: string, method: string, ...args: unknown[]) => void
  /** To the node's log and `stem logs`, tagged with this cell's address and revision (at most 100 lines per message, 8 KiB each). */
  log: (...args: unknown[]) => void
  /** ms since the epoch */
  now: () => number
  /**
   * An error to throw for an HTTP status: `throw stem.error(404, 'no order 99')` answers a
   * route with 404 `{ "error": "no order 99", "cell": …, "method": … }`. status: 400–599.
   */
  error: (status: number, message: string) => Error
  /** `return stem.response(201, order, { location: '/orders/1' })`: status 200–599, the body (JSON-like), headers. */
  response: <Body>(status: number, body: Body, headers?: Record<string, string>) => StemResponse<Body>
  /**
   * A durable reminder: calls `method(...args, meta: ReminderMeta)` on this instance at
   * `when`: a delay in ms (below 10^12), or a time in ms since the epoch. At least 10 ms
   * ahead; at most 1,000 pending per instance (else it throws). Kept with the state, so it
   * survives failover and restarts, and rolled back with it if the message throws. Returns its id.
   */
  schedule: (when: number, method: string, ...args: unknown[]) => string
  /** Cancels a pending reminder; true if it was pending. */
  cancel: (id: string) => boolean
  /** The pending reminders, soonest first. */
  reminders: () => PendingReminder[]
  /**
   * Appends `record` to a stream of this app (manifest `streams`); records of one `key` go
   * to one partition, in order. Resolves once the record is durable; rejects with a 429
   * `backpressure` error while its partition is full of records not yet consumed.
   */
  emit: (stream: string, record: Json, options?: { key?: string }) => Promise<{ partition: number, offset: number }>
}

/** The second argument of `onRecord(record, meta)` in a cell that consumes a stream. */
export interface RecordMeta {
  stream: string
  partition: number
  /** the record's place in its partition, from 0 */
  offset: number
  key: string | null
  /** when it was appended, ms since the epoch */
  time: number
}

/** The last argument of a method called by a reminder. */
export interface ReminderMeta {
  /** the reminder's id (as `stem.schedule` returned it) */
  reminder: string
  /** when it was due, ms since the epoch (`stem.now() - due`: how late it fired) */
  due: number
}

/** A pending reminder, as `stem.reminders()` lists it. */
export interface PendingReminder {
  id: string
  /** ms since the epoch */
  due: number
  method: string
  args: Json[]
}

declare global {
  /** The only thing a cell can reach (no process, require, timers, fetch or WebAssembly). */
  const stem: Stem
}
