// One HTTP request's ask to a cell: picks a replica, enforces the route's deadline (the
// ask is aborted and the gateway answers even if the backend ignores the abort), and
// retries a CELL_UNAVAILABLE failure where that is safe, with the same message id, until
// the deadline: during a failover the instance is away for about a second, and a request
// that waits for its new primary beats a 503.
import { setTimeout as delay } from 'node:timers/promises'
import { cellFailureOf, classifyBackendError, errorMessage, type CellFailure, type CellTarget, type GatewayBackend } from './backend.js'
import type { ReplicaBalancer } from './balancer.js'

export interface InvokeRequest {
  app: string
  cell: string
  /** a keyed cell's key (from the path): the mesh routes it to its shard, no replica is picked */
  key?: string
  cellMethod: string
  arg: unknown
  messageId: string
  timeoutMs: number
  /** whether a CELL_UNAVAILABLE failure may be retried (safe method, or a deduping receiver) */
  retryable: boolean
  /** the request's one controller: the caller aborts it when the client goes away or the
   * gateway stops, invokeCell when the deadline passes; its signal goes to every ask */
  controller: AbortController
}

export interface RetryPolicy {
  /** retries after the first attempt (Infinity: until the deadline) */
  maxRetries: number
  /** first back-off (ms), doubled per retry */
  backoffMs: number
  maxBackoffMs: number
}

export type InvokeOutcome =
  | { kind: 'ok', value: unknown }
  | { kind: 'cell-error', message: string, failure?: CellFailure }
  | { kind: 'timeout' }
  | { kind: 'unavailable', message: string, attempts: number }
  | { kind: 'overloaded', message: string }
  | { kind: 'aborted', reason: unknown }

class DeadlineExpired extends Error {
  constructor () {
    super('deadline expired')
    this.name = 'TimeoutError'
  }
}

export async function invokeCell (backend: GatewayBackend, balancer: ReplicaBalancer, request: InvokeRequest, policy: RetryPolicy): Promise<InvokeOutcome> {
  const deadline = Date.now() + request.timeoutMs
  const controller = request.controller
  const timer = setTimeout(() => { controller.abort(new DeadlineExpired()) }, request.timeoutMs)
  const aborted = abortedPromise(controller.signal)
  try {
    let avoid: number | undefined
    for (let attempt = 1; ; attempt++) {
      const failure = await attemptOnce(backend, balancer, request, controller.signal, aborted, deadline, avoid)
      if (failure.kind !== 'unavailable-at') return failure
      if (!request.retryable || attempt > policy.maxRetries) {
        return { kind: 'unavailable', message: failure.message, attempts: attempt }
      }
      avoid = failure.instance
      const backoff = Math.min(policy.backoffMs * 2 ** (attempt - 1), policy.maxBackoffMs)
      try {
        await delay(Math.min(backoff, Math.max(0, deadline - Date.now())), undefined, { signal: controller.signal })
      } catch {
        // the deadline passing while the cell is away is still the cell being unavailable
        const outcome = abortOutcome(controller.signal)
        return outcome.kind === 'timeout' ? { kind: 'unavailable', message: failure.message, attempts: attempt } : outcome
      }
    }
  } finally {
    clearTimeout(timer)
  }
}

type AttemptResult = InvokeOutcome | { kind: 'unavailable-at', message: string, instance: number | undefined }

async function attemptOnce (backend: GatewayBackend, balancer: ReplicaBalancer, request: InvokeRequest,
  signal: AbortSignal, aborted: Promise<never>, deadline: number, avoid: number | undefined): Promise<AttemptResult> {
  if (signal.aborted) return abortOutcome(signal)
  if (request.key !== undefined) return await askOnce(backend, request, { app: request.app, cell: request.cell, key: request.key }, signal, aborted, deadline)
  let replicas: number
  try {
    replicas = backend.replicas(request.app, request.cell)
  } catch (err) {
    return { kind: 'unavailable-at', message: errorMessage(err), instance: undefined }
  }
  if (!(replicas >= 1)) {
    return { kind: 'unavailable-at', message: `cell ${request.app}/${request.cell} has no replica serving`, instance: undefined }
  }
  const instance = balancer.pick(request.app, request.cell, replicas, avoid)
  const done = balancer.begin(request.app, request.cell, instance)
  try {
    return await askOnce(backend, request, { app: request.app, cell: request.cell, instance }, signal, aborted, deadline)
  } finally {
    done()
  }
}

async function askOnce (backend: GatewayBackend, request: InvokeRequest, target: CellTarget,
  signal: AbortSignal, aborted: Promise<never>, deadline: number): Promise<AttemptResult> {
  try {
    const asked = backend.ask(target, request.cellMethod, [request.arg],
      { signal, messageId: request.messageId, deadline })
    // a backend that ignores the abort must not hold the request: race it, and keep its
    // late rejection from surfacing as an unhandled one
    asked.catch(() => {})
    const value = await Promise.race([asked, aborted])
    return { kind: 'ok', value }
  } catch (err) {
    if (signal.aborted) return abortOutcome(signal)
    switch (classifyBackendError(err)) {
      case 'unavailable': return { kind: 'unavailable-at', message: errorMessage(err), instance: target.instance }
      case 'overloaded': return { kind: 'overloaded', message: errorMessage(err) }
      default: return { kind: 'cell-error', message: errorMessage(err), failure: cellFailureOf(err) }
    }
  }
}

function abortOutcome (signal: AbortSignal): InvokeOutcome {
  return signal.reason instanceof DeadlineExpired ? { kind: 'timeout' } : { kind: 'aborted', reason: signal.reason }
}

function abortedPromise (signal: AbortSignal): Promise<never> {
  const promise = new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason)
    else signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
  promise.catch(() => {})
  return promise
}
