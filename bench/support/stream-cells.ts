// Cell code shared by the stream benches, and how to read the workers.
import { setTimeout as delay } from 'node:timers/promises'
import type { StemConnection } from '../../src/messaging/sdk.js'

/** a consumer that counts records and keeps, per partition, when it last applied one */
export const WORKER = `
export default class Worker {
  count = 0
  lastAt = {}
  onRecord (record, meta) { this.count++; this.lastAt[meta.partition] = Date.now() }
  get () { return this.count }
  last (partition) { return this.lastAt[partition] ?? 0 }
}
`
/** a plain cell asked once per record: the durable ask a record would cost without a stream */
export const SINK = `
export default class Sink {
  count = 0
  add (record) { this.count++; return this.count }
  get () { return this.count }
}
`

/** records the 3 workers have applied */
export async function consumed (sdk: StemConnection): Promise<number> {
  let sum = 0
  for (let i = 0; i < 3; i++) sum += await sdk.call(`bench/worker#${i}`, 'get', [], { deadline: Date.now() + 10_000 }) as number
  return sum
}

/** waits until the workers have applied `count` records */
export async function consumedUpTo (sdk: StemConnection, count: number): Promise<void> {
  const deadline = Date.now() + 300_000
  while (await consumed(sdk) < count) {
    if (Date.now() > deadline) throw new Error(`the workers consumed ${await consumed(sdk)} of ${count} records within 300 s`)
    await delay(50)
  }
}

/** The stream benches' app: a stream of 4 partitions, 3 consuming workers and 4 sink replicas */
export const STREAM_APP = `app: bench
streams:
  orders: { partitions: 4, retention: 100000 }
cells:
  worker: { code: ./worker.js, replicas: 3, consumes: [orders] }
  sink: { code: ./sink.js, replicas: 4 }
`
