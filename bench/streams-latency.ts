// Stream latency (issue 20): on the stream-throughput setting (3 real `stem` nodes, 4
// partitions, durability disk, a group of 3 worker replicas), the throughput is measured
// first (8 producers, acknowledged and consumed), then records are emitted at half of it by
// a steady pacer, each carrying its emit time; the worker that applies it keeps
// `Date.now() - t` in its state (one machine, one clock), read back at the end. Beside it,
// at the same rate on the same mesh: a durable ask's round trip to a plain cell.
//   stream-latency   emit → onRecord p50/p99 at 50% of the measured throughput
import { newMessageId } from '../src/messaging/sdk.js'
import { paced, produce } from './support/pacing.js'
import { percentile } from './support/stats.js'
import { consumed, consumedUpTo, SINK, STREAM_APP } from './support/stream-cells.js'
import { withStreamApp } from './support/stream-app.js'

const WARM = 400
const RECORDS = 300
const TIMED_WORKER = `
export default class Worker {
  count = 0
  latencies = []
  onRecord (record) { this.count++; if (record.t !== undefined) this.latencies.push(Date.now() - record.t) }
  get () { return this.count }
  take () { const out = this.latencies; this.latencies = []; return out }
}
`
const ms = (v: number): string => `${v.toFixed(0)} ms`

await withStreamApp(3, { 'app.yaml': STREAM_APP, 'worker.js': TIMED_WORKER, 'sink.js': SINK }, async ({ nodes, sdkOf }) => {
  const sdk = await sdkOf(nodes[1])
  const orders = sdk.stream('bench/orders')
  const options = (): { messageId: string, deadline: number } => ({ messageId: newMessageId(), deadline: Date.now() + 30_000 })
  // the throughput, as stream-throughput counts it with 8 producers: until consumed
  const started = performance.now()
  await produce(8, WARM, async (p, i) => await orders.emit({ i }, { key: `k${p}-${i % 16}`, ...options() }))
  await consumedUpTo(sdk, WARM)
  const throughput = WARM / ((performance.now() - started) / 1000)
  const rate = throughput / 2

  const before = await consumed(sdk)
  await paced(rate, RECORDS, async i => await orders.emit({ i, t: Date.now() }, { key: `k${i % 64}`, ...options() }))
  await consumedUpTo(sdk, before + RECORDS)
  const latencies: number[] = []
  for (let w = 0; w < 3; w++) latencies.push(...await sdk.call(`bench/worker#${w}`, 'take', [], options()) as number[])
  if (latencies.length !== RECORDS) throw new Error(`${latencies.length} of ${RECORDS} records were timed`)

  const asks = await paced(rate, RECORDS, async i => {
    const t = performance.now()
    await sdk.call(`bench/sink#${i % 4}`, 'add', [{ i }], options())
    return performance.now() - t
  })
  const p50 = percentile(latencies, 0.5)
  const ask50 = percentile(asks, 0.5)
  console.log(`bench stream-latency: p50 ${ms(p50)}, p99 ${ms(percentile(latencies, 0.99))} from emit to onRecord at ${rate.toFixed(1)} records/s (half of the ${throughput.toFixed(1)} records/s consumed from 8 producers in the same run), ${RECORDS} records into 4 partitions consumed by 3 replicas on 3 nodes, durability disk (a durable ask's round trip at the same rate p50 ${ms(ask50)}, p99 ${ms(percentile(asks, 0.99))}, ratio ${(p50 / ask50).toFixed(2)})`)
})
