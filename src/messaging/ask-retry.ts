// Asks that wait out a failover within their deadline. While an instance moves (its node
// died or stalled, its clone is being promoted) an ask finds the old node unreachable or
// the cell "not here"; the SDK and the control API's /v1/call retry such asks with the same
// message id (the receiving node runs it once), backing off from 50 ms to 400 ms, until the
// deadline — instead of failing within a second of the fault.
import { setTimeout as delay } from 'node:timers/promises'
import { MessagingError } from './errors.js'
import type { MessagingErrorCode } from './errors.js'
import type { CallOptions, CellCaller } from './sdk.js'

/** the default ask deadline (as cell messaging's askTimeout) */
const DEFAULT_DEADLINE_MS = 30_000
const FIRST_BACKOFF_MS = 50
const MAX_BACKOFF_MS = 400
/** failures that say where the instance is not, never what it answered */
const MOVING: ReadonlySet<MessagingErrorCode> = new Set(['not-here', 'unreachable'])

/** `caller.ask`, retried while the instance is moving, up to the ask's deadline. `options.messageId` must be set (the retry dedupes by it). */
export async function askUntilDeadline (caller: CellCaller, address: string, method: string, args: unknown[], options: CallOptions & { messageId: string }): Promise<unknown> {
  const deadline = options.deadline ?? Date.now() + DEFAULT_DEADLINE_MS
  for (let attempt = 0; ; attempt++) {
    try {
      return await caller.ask(address, method, args, { ...options, deadline })
    } catch (err) {
      const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt)
      if (!(err instanceof MessagingError && MOVING.has(err.code)) || Date.now() + backoff >= deadline) throw err
      try {
        await delay(backoff, undefined, { signal: options.signal })
      } catch {
        throw err
      }
    }
  }
}
