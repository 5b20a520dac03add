// What the gateway needs from the layers below it: a way to ask a cell anywhere in the
// mesh, and how many replicas a cell has. The node wires this to messaging/topology; unit
// tests use an in-process double.
import { splitReply } from '../cells/reply-meta.js'

export interface CellTarget {
  app: string
  cell: string
  /** the replica to ask (0-based); the gateway load-balances across `replicas(app, cell)` */
  instance?: number
  /** a keyed cell's key (decoded): asked at `app/cell/<key>` */
  key?: string
}

export interface AskOptions {
  /** aborted when the route's deadline passes, the client goes away or the gateway stops */
  signal: AbortSignal
  /** the same id on every retry of one request, so a receiver that dedupes by id runs it once */
  messageId: string
  /** epoch ms after which the answer is no longer wanted */
  deadline: number
}

/** A result that sets the HTTP status and headers (a cell's `stem.response(status, body, headers)`). */
export class CellResponse {
  constructor (readonly status: number, readonly headers: Record<string, string>, readonly body: unknown) {}
}

/** The value of an answered ask's reply text (cells/reply-meta.ts): its JSON, or a CellResponse when the cell set status and headers. */
export function replyValue (text: string): unknown {
  const { head, trailer } = splitReply(text)
  const body: unknown = JSON.parse(head)
  return trailer?.response !== undefined ? new CellResponse(trailer.response.status, trailer.response.headers, body) : body
}

/** What an error a cell's method threw says besides its message (`err.cellError`, see cells/reply-meta.ts). */
export interface CellFailure {
  cell: string
  method: string
  /** `stem.error(status, …)`: the HTTP status to answer with (400–599) */
  status?: number
}

export function cellFailureOf (err: unknown): CellFailure | undefined {
  const info = (err as { cellError?: Partial<CellFailure> } | null)?.cellError
  if (info === undefined || info === null || typeof info.cell !== 'string' || typeof info.method !== 'string') return undefined
  const status = typeof info.status === 'number' && Number.isInteger(info.status) && info.status >= 400 && info.status <= 599 ? info.status : undefined
  return { cell: info.cell, method: info.method, ...(status !== undefined ? { status } : {}) }
}

export interface GatewayBackend {
  /** Resolves with the cell method's result (a CellResponse when the cell set status and
   * headers), or rejects with the cell's error (with `cellError`, see cellFailureOf). Rejects
   * with an error whose `code` is one of {@link BackendErrorCode} for failures that are not the cell's own. */
  ask: (target: CellTarget, method: string, args: unknown[], options: AskOptions) => Promise<unknown>
  /** the number of replicas currently serving `app/cell` (0 when not placed) */
  replicas: (app: string, cell: string) => number
  /** true when the receiver dedupes asks by `messageId`: then a POST/PUT/PATCH/DELETE is
   * retried on CELL_UNAVAILABLE as safely as a GET (exactly-once in effect) */
  readonly dedupesByMessageId?: boolean
}

/**
 * Error codes (`err.code`) the gateway acts on:
 * - CELL_UNAVAILABLE: the cell cannot take the message right now (moving, failing over,
 *   not placed yet, its host restarting). Retried where safe, else 503 with Retry-After.
 * - CELL_OVERLOADED: the cell refused the message (mailbox full). 503 with Retry-After.
 * Any other rejection is the cell's own error: 500 with its message.
 */
export const BackendErrorCode = {
  unavailable: 'CELL_UNAVAILABLE',
  overloaded: 'CELL_OVERLOADED'
} as const

export type BackendFailure = 'unavailable' | 'overloaded' | 'cell'

export function classifyBackendError (err: unknown): BackendFailure {
  const code = (err as { code?: unknown } | null)?.code
  if (code === BackendErrorCode.unavailable) return 'unavailable'
  if (code === BackendErrorCode.overloaded) return 'overloaded'
  return 'cell'
}

/** An error carrying one of the {@link BackendErrorCode} codes, for backends to throw. */
export class BackendError extends Error {
  readonly code: string
  constructor (code: typeof BackendErrorCode[keyof typeof BackendErrorCode], message: string) {
    super(message)
    this.name = 'BackendError'
    this.code = code
  }
}

export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'string') return err
  return 'cell failed without a message'
}
