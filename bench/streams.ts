// Stream throughput (issue 20): a 3-node mesh of real `stem` processes, a stream of 4
// partitions (durability disk, one clone each) consumed by a group of 3 worker replicas.
// Producers emit through the SDK, one after the other each, 1 and then 8 of them; a
// record counts as produced when its emit is acknowledged (durable on the partition's
// primary and clone) and as consumed when the workers' summed counts include it.
// Beside it, in the same run and mesh: `remote-tell`, tells from a cell to a plain cell on
// another node (what a message costs with no durability and no answer), and the same
// producers asking a plain cell with the same durability (an emit is an append
// acknowledged once durable, so a durable ask is what a record would cost without a stream).
//   stream-throughput   records/s acknowledged and consumed, 1 and 8 producers
import { newMessageId } from '../src/messaging/sdk.js'
import { cellsOf } from './support/cells-of.js'
import { remoteInstance, TALLY, TELLER, tellRate } from './support/mesh-tell.js'
import { produce } from './support/pacing.js'
import { consumed, consumedUpTo, SINK, STREAM_APP, WORKER } from './support/stream-cells.js'
import { withStreamApp } from './support/stream-app.js'

const RECORDS = { 1: 400, 8: 1600 } as const
const TELLS = 5000
// the stream app, with a teller and tallies for the remote-tell baseline
const MANIFEST = `${STREAM_APP}  teller: { code: ./teller.js }
  tally: { code: ./tally.js, replicas: 3, durability: memory }
`

const files = { 'app.yaml': MANIFEST, 'worker.js': WORKER, 'sink.js': SINK, 'teller.js': TELLER, 'tally.js': TALLY }
await withStreamApp(3, files, async ({ nodes, sdkOf }) => {
  const sdk = await sdkOf(nodes[1])
  const orders = sdk.stream('bench/orders')
  const parts: string[] = []
  const asks: string[] = []
  let total = 0
  let emitted8 = 0
  for (const producers of [1, 8] as const) {
    const records = RECORDS[producers]
    const before = await consumed(sdk)
    const started = performance.now()
    const emitted = await produce(producers, records, async (p, i) => await orders.emit({ i }, { key: `k${p}-${i % 16}`, messageId: newMessageId(), deadline: Date.now() + 30_000 }))
    total += records
    await consumedUpTo(sdk, before + records)
    const consumedRate = records / ((performance.now() - started) / 1000)
    const asked = await produce(producers, records, async (p, i) => await sdk.call(`bench/sink#${i % 4}`, 'add', [{ i }], { messageId: newMessageId(), deadline: Date.now() + 30_000 }))
    parts.push(`${producers} producer(s) ${Math.round(emitted)} records/s acknowledged, ${Math.round(consumedRate)} consumed`)
    asks.push(`${producers}: ${Math.round(asked)} asks/s, ratio ${(emitted / asked).toFixed(2)}`)
    emitted8 = emitted
  }
  const tally = remoteInstance(await cellsOf(nodes[1], 'bench'), 'bench/teller#0', 'bench/tally')
  const told = await tellRate(sdk, 'bench/teller#0', tally, TELLS)
  console.log(`bench stream-throughput: ${parts.join('; ')}; ${total} records into 4 partitions consumed by 3 replicas on 3 nodes, durability disk (remote-tell ${Math.round(told)} msg/s, ${TELLS} tells from a cell to a plain cell on another node of the same mesh, ratio ${(emitted8 / told).toFixed(3)} with 8 producers; a durable ask to a cell with the same producers ${asks.join('; ')})`)
})
