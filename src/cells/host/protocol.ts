// Messages between the node and a cell host over their link (link.ts: length-prefixed
// JSON frames on a socket pair). Each side batches: one frame carries an array of these;
// the node checks each message from a host (protocol-check.ts).
import type { CellLimits, RuntimeBounds } from '../limits.js'

export type ToHost =
  /**
   * `localAsks`: asks between this host's own cells may be answered inside the process.
   * False when the node gates replies on clones (SPEC §4): an answer must then wait
   * until the state it produced is held by a clone, which only the node knows.
   */
  | { t: 'init', app: string, bounds: RuntimeBounds, localAsks: boolean }
  | { t: 'transform', req: number, address: string, hash: string, code: string, limits: CellLimits, state: string | null, version: number, replace: boolean }
  | { t: 'revert', req: number, address: string }
  | { t: 'snapshot', req: number, address: string }
  /** deliver a message; tell: no reply wanted; from: the sending cell's address, if a cell sent it; key: of a keyed cell */
  | { t: 'call', id: number, address: string, method: string, args: string, tell: boolean, from?: string, key?: string }
  /**
   * fire a due reminder (cells/reminders.ts): answered with a 'reply' like a call; `method`
   * is its method, for error reports; drop: take it out of the state without running it
   */
  | { t: 'fire', id: number, address: string, reminder: string, method: string, drop: boolean }
  /** the answer to a cell's outgoing ask that the node routed */
  | { t: 'answer', askId: number, ok: boolean, text: string }
  | { t: 'ping', n: number }

export type CellFault = 'crashed' | 'restarted' | 'failed'

export type FromHost =
  | { t: 'ready' }
  /** answer to transform/revert/snapshot; text: state JSON for transform/snapshot, or the error */
  | { t: 'done', req: number, ok: boolean, text: string, version: number }
  /** answer to a call: ok + result JSON, or the error message */
  | { t: 'reply', id: number, ok: boolean, text: string }
  /** how many tells (calls with tell: true) to a cell finished since the last report, ran or failed */
  | { t: 'told', address: string, n: number }
  /** a cell's state after a message changed it */
  | { t: 'state', address: string, state: string, version: number }
  | { t: 'event', address: string, kind: CellFault, reason: string }
  /** a cell's ask/tell to an address outside this host */
  | { t: 'ask', askId: number, from: string, address: string, method: string, args: string, tell: boolean }
  | { t: 'log', address: string, text: string }
  /** a message failed with an error its method threw; stack mapped to the original sources ('' if unknown) */
  | { t: 'error', address: string, method: string, text: string, stack: string }
  | { t: 'pong', n: number, rss: number }
