// The typed client SDK: methods are messages.
//
//   import { connect } from 'stem/sdk'    (package.json exports; declarations: types/sdk.tsconfig.json)
//   const counter = connect(messagingOrNode).cell<Counter>('shop/counter')
//   await counter.increment(5)           // an ask: Promise of the method's result
//
// `connect` takes anything that can ask (the node's CellMessaging, a CellRuntime) or an
// API URL and token (HTTP: see call-client.ts). Every call gets a fresh message id;
// `withMessageId(id)` pins one, so a retry after a lost answer runs once on the cell.
// A call made while its cell fails over waits for the new primary within its deadline
// (ask-retry.ts).
import { randomBytes } from 'node:crypto'
import { parseAddress } from '../cells/address.js'
import { createHttpCaller } from './call-client.js'
import type { HttpCallerOptions } from './call-client.js'
import { askUntilDeadline } from './ask-retry.js'

export interface CallOptions {
  /** 32 hex digits; the receiver runs a retried ask with the same id once */
  messageId?: string
  deadline?: number
  signal?: AbortSignal
}

/** What `connect` needs: CellMessaging and CellRuntime both fit. */
export interface CellCaller {
  ask: (address: string, method: string, args: unknown[], options?: CallOptions) => Promise<unknown>
}

/** The cell class's methods as asks: each returns a Promise of the method's (awaited) result. */
export type CellClient<T> = {
  readonly [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]:
  T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never
} & {
  /** the same proxy, sending each call with these options (e.g. a pinned messageId for a retry) */
  readonly $with: (options: CallOptions) => CellClient<T>
  readonly $address: string
}

export interface StemConnection {
  cell: <T = Record<string, (...args: never[]) => unknown>>(address: string) => CellClient<T>
  /** ask without the proxy */
  call: (address: string, method: string, args?: unknown[], options?: CallOptions) => Promise<unknown>
}

export type ConnectTarget = CellCaller | string | (HttpCallerOptions & { url: string })

export function connect (target: ConnectTarget): StemConnection {
  const caller: CellCaller = typeof target === 'string'
    ? createHttpCaller({ url: target })
    : 'ask' in target ? target : createHttpCaller(target)
  const call = async (address: string, method: string, args: unknown[] = [], options: CallOptions = {}): Promise<unknown> =>
    await askUntilDeadline(caller, address, method, args, { ...options, messageId: options.messageId ?? newMessageId() })
  const proxy = <T>(address: string, options: CallOptions): CellClient<T> => new Proxy({}, {
    get (_target, property) {
      if (property === '$address') return address
      if (property === '$with') return (more: CallOptions) => proxy<T>(address, { ...options, ...more })
      // not a thenable: `await client` must not turn into an ask
      if (typeof property !== 'string' || property === 'then') return undefined
      return async (...args: unknown[]) => await call(address, property, args, options)
    }
  }) as CellClient<T>
  return {
    call,
    cell: <T>(address: string) => {
      parseAddress(address)
      return proxy<T>(address, {})
    }
  }
}

export function newMessageId (): string {
  return randomBytes(16).toString('hex')
}
