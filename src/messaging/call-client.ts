// The SDK over a node's control API. The API layer serves this endpoint (see callHandler):
//
//   POST <url>/v1/call   Authorization: Bearer <token>
//   { "address": "shop/counter", "method": "increment", "args": [5], "messageId": "<32 hex>" }
//   200 { "result": <JSON> }  |  4xx/5xx { "error": "<one line>", "code"?: "<MessagingErrorCode>",
//        "cell"?, "method"?, "status"?, "stack"? }   (an error the cell's method threw: where, and its stack)
import type { CellCaller, CallOptions } from './sdk.js'
import { MessagingError } from './errors.js'
import type { MessagingErrorCode } from './errors.js'
import type { CellErrorInfo } from '../cells/reply-meta.js'
import { askUntilDeadline } from './ask-retry.js'
import { newMessageId } from './sdk.js'

export interface HttpCallerOptions {
  /** e.g. http://127.0.0.1:7070 */
  url: string
  token?: string
  /** ms per call when no deadline is given (default 30 s) */
  timeout?: number
}

export interface CallRequest {
  address: string
  method: string
  args: unknown[]
  messageId?: string
  /** ms since the epoch */
  deadline?: number
}

export type CallResponse = { result: unknown } | { error: string, code?: string, cell?: string, method?: string, status?: number, stack?: string }

function cellErrorOf (answer: { cell?: unknown, method?: unknown, status?: unknown, stack?: unknown }): CellErrorInfo | undefined {
  if (typeof answer.cell !== 'string' || typeof answer.method !== 'string') return undefined
  return {
    cell: answer.cell,
    method: answer.method,
    ...(typeof answer.status === 'number' ? { status: answer.status } : {}),
    ...(typeof answer.stack === 'string' ? { stack: answer.stack } : {})
  }
}

export function createHttpCaller (options: HttpCallerOptions): CellCaller {
  const base = options.url.replace(/\/+$/, '')
  return {
    async ask (address, method, args, call: CallOptions = {}) {
      const body: CallRequest = { address, method, args, messageId: call.messageId, deadline: call.deadline }
      const timeout = AbortSignal.timeout(call.deadline !== undefined ? Math.max(1, call.deadline - Date.now()) : options.timeout ?? 30_000)
      let response: Response
      try {
        response = await fetch(`${base}/v1/call`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}) },
          body: JSON.stringify(body),
          signal: call.signal !== undefined ? AbortSignal.any([call.signal, timeout]) : timeout
        })
      } catch (err) {
        throw new MessagingError('unreachable', `cannot reach ${base}: ${(err as Error).message}`)
      }
      let answer: CallResponse
      try {
        answer = await response.json() as CallResponse
      } catch {
        throw new MessagingError('remote', `${base}/v1/call answered ${response.status} without JSON`)
      }
      if ('error' in answer) throw new MessagingError((answer.code as MessagingErrorCode | undefined) ?? 'remote', String(answer.error), cellErrorOf(answer))
      if (!response.ok || !('result' in answer)) throw new MessagingError('remote', `${base}/v1/call answered ${response.status}`)
      return answer.result
    }
  }
}

/**
 * The server side, for the API layer: validates a POST /v1/call body and asks through
 * `caller` (the node's CellMessaging). Returns the HTTP status and JSON body to send.
 */
export async function callHandler (caller: CellCaller, body: unknown): Promise<{ status: number, body: CallResponse }> {
  const request = body as Partial<CallRequest> | null
  if (request === null || typeof request !== 'object') return { status: 400, body: { error: 'body must be a JSON object { address, method, args }' } }
  if (typeof request.address !== 'string') return { status: 400, body: { error: 'field address must be a string (app/cell, app/cell#i or app/cell/<key>)' } }
  if (typeof request.method !== 'string' || request.method === '') return { status: 400, body: { error: 'field method must be a non-empty string' } }
  if (request.args !== undefined && !Array.isArray(request.args)) return { status: 400, body: { error: 'field args must be an array' } }
  if (request.messageId !== undefined && (typeof request.messageId !== 'string' || !/^[0-9a-f]{32}$/i.test(request.messageId))) return { status: 400, body: { error: 'field messageId must be 32 hex digits' } }
  if (request.deadline !== undefined && !Number.isSafeInteger(request.deadline)) return { status: 400, body: { error: 'field deadline must be ms since the epoch' } }
  try {
    // waits out a failover within the deadline (the same message id on every retry)
    const result = await askUntilDeadline(caller, request.address, request.method, request.args ?? [], { messageId: request.messageId ?? newMessageId(), deadline: request.deadline })
    return { status: 200, body: { result } }
  } catch (err) {
    const code = err instanceof MessagingError ? err.code : undefined
    const status = code === 'unknown-address' || code === 'not-here' ? 404 : code === 'backpressure' || code === 'busy' ? 503 : code === 'timeout' ? 504 : /^invalid /.test((err as Error).message) ? 400 : 500
    // the control API is the owner's own (local, with a token): the stack is shown
    const cell = (err as { cellError?: CellErrorInfo }).cellError
    return { status, body: { error: (err as Error).message, ...(code !== undefined ? { code } : {}), ...(cell !== undefined ? cell : {}) } }
  }
}
