// Errors the messaging layer hands to callers: one line, with a code to branch on.
import { isTimeoutReply, replyOfError, splitReply, type CellErrorInfo } from '../cells/reply-meta.js'

export type MessagingErrorCode =
  | 'backpressure' // the bounded outbound queue to that node is full: slow down or wait (whenWritable)
  | 'unknown-address' // the directory knows no node for the address and no local cell has it
  | 'not-here' // the node named by the directory has no such cell, even after one re-route
  | 'busy' // the cell's mailbox stayed full until the ask's deadline
  | 'timeout' // no answer before the deadline (the ask may or may not have run)
  | 'aborted'
  | 'unreachable' // the node could not be reached or the connection was lost
  | 'too-large' // one message is larger than a frame may be
  | 'remote' // the cell (or the remote runtime) answered with an error
  | 'stopped'

export class MessagingError extends Error {
  readonly code: MessagingErrorCode
  /** 'remote': the error a cell's method threw (its address, method, HTTP status and stack), when known */
  readonly cellError?: CellErrorInfo

  constructor (code: MessagingErrorCode, message: string, cellError?: CellErrorInfo) {
    super(message)
    this.name = 'MessagingError'
    this.code = code
    if (cellError !== undefined) this.cellError = cellError
  }
}

/**
 * A failed reply's text (see cells/reply-meta.ts) as a MessagingError: 'timeout' when the
 * runtime that holds the cell saw the ask's deadline pass (the same outcome as the caller's
 * own timer, whichever fired first), else 'remote'.
 */
export function remoteError (text: string): MessagingError {
  if (isTimeoutReply(text)) return new MessagingError('timeout', text)
  const { head, trailer } = splitReply(text)
  return new MessagingError('remote', head, trailer?.error)
}

/** A local runtime's timeout as the same 'timeout' MessagingError a remote one gives; any other error as it is. */
export function localError (err: unknown): unknown {
  return err instanceof Error && !(err instanceof MessagingError) && isTimeoutReply(replyOfError(err)) ? new MessagingError('timeout', err.message) : err
}
