// The typed client SDK: methods are messages.
//
//   import { connect } from 'stem/sdk'    (package.json exports; declarations: types/sdk.tsconfig.json)
//   const counter = connect(messagingOrNode).cell<Counter>('shop/counter')
//   await counter.increment(5)           // an ask: Promise of the method's result
//   await client.stream('shop/orders').emit(record, { key })   // → { partition, offset } once durable
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
import { partitionCell, pickPartition } from '../cells/streams/partition.js'

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
  /** a stream of an app, `app/stream` */
  stream: (address: string) => StreamClient
}

export interface EmitOptions extends CallOptions {
  /** records of one key go to one partition, in order */
  key?: string
}

export interface StreamClient {
  /** appends a record; resolves once it is durable, fails with a `backpressure` error (status 429) while its partition is full */
  emit: (record: unknown, options?: EmitOptions) => Promise<{ partition: number, offset: number }>
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
    stream: (address: string) => {
      const { app, cell: stream, replica } = parseAddress(address)
      if (replica !== undefined) throw new Error(`invalid stream address ${address}: expected app/stream`)
      let partitions: Promise<number> | undefined
      return {
        async emit (record, options = {}) {
          // the partition count, asked once (a failed ask is asked again next time)
          // without the caller's message id: the append may go to partition 0 too, whose reply
          // window would answer it with this ask's recorded result
          const { messageId: _pinned, ...unpinned } = options
          partitions ??= call(`${app}/${partitionCell(stream, 0)}`, 'partitions', [], unpinned).then(n => {
            if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new Error(`stream ${address} answered a bad partition count`)
            return n
          }, (err: Error) => { partitions = undefined; throw err })
          const n = await partitions
          const key = options.key ?? null
          return await call(`${app}/${partitionCell(stream, pickPartition(key, n))}`, 'append', [record ?? null, key], options) as { partition: number, offset: number }
        }
      }
    },
    cell: <T>(address: string) => {
      parseAddress(address)
      return proxy<T>(address, {})
    }
  }
}

export function newMessageId (): string {
  return randomBytes(16).toString('hex')
}
