// Stream throughput (issue 20): a 3-node mesh of real `stem` processes, a stream of 4
// partitions (durability disk, one clone each) consumed by a group of 3 worker replicas.
// Producers emit through the SDK, one after the other each, 1 and then 8 of them; a
// record counts as produced when its emit is acknowledged (durable on the partition's
// primary and clone) and as consumed when the workers' summed counts include it.
// Beside it, in the same run and mesh, the same producers ask a plain cell with the same
// durability: an emit is an append acknowledged once durable, so a durable ask is what
// a record would cost without a stream (the in-process `remote-tell` carries no state).
//   stream-throughput   records/s acknowledged and consumed, 1 and 8 producers
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { connect, newMessageId, type StemConnection } from '../src/messaging/sdk.js'
import { apiUrlOf, stemJson, stopAll } from '../scripts/support/stem-process.js'
import { startMesh } from '../scripts/support/stem-mesh.js'

const RECORDS = { 1: 400, 8: 1600 } as const
const WORKER = `
export default class Worker {
  count = 0
  onRecord () { this.count++ }
  get () { return this.count }
}
`
const SINK = `
export default class Sink {
  count = 0
  add (record) { this.count++; return this.count }
}
`
const MANIFEST = `app: bench
streams:
  orders: { partitions: 4, retention: 100000 }
cells:
  worker: { code: ./worker.js, replicas: 3, consumes: [orders] }
  sink: { code: ./sink.js, replicas: 4 }
`

/** `records` spread over `producers`, each waiting for its previous one; records/s */
async function produce (producers: number, records: number, send: (p: number, i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await Promise.all(Array.from({ length: producers }, async (_, p) => {
    for (let i = p; i < records; i += producers) await send(p, i)
  }))
  return records / ((performance.now() - started) / 1000)
}

async function consumed (sdk: StemConnection): Promise<number> {
  let sum = 0
  for (let i = 0; i < 3; i++) sum += await sdk.call(`bench/worker#${i}`, 'get', [], { deadline: Date.now() + 10_000 }) as number
  return sum
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-streams-'))
  const nodes = await startMesh(3)
  try {
    await writeFile(join(dir, 'worker.js'), WORKER)
    await writeFile(join(dir, 'sink.js'), SINK)
    await writeFile(join(dir, 'app.yaml'), MANIFEST)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    const sdk = connect({ url: await apiUrlOf(nodes[1].dataDir), token: (await readFile(join(nodes[1].dataDir, 'api-token'), 'utf8')).trim() })
    const orders = sdk.stream('bench/orders')
    const parts: string[] = []
    const baselines: string[] = []
    let total = 0
    for (const producers of [1, 8] as const) {
      const records = RECORDS[producers]
      const before = await consumed(sdk)
      const started = performance.now()
      const emitted = await produce(producers, records, async (p, i) => await orders.emit({ i }, { key: `k${p}-${i % 16}`, messageId: newMessageId(), deadline: Date.now() + 30_000 }))
      total += records
      // consumption: until the workers hold every record of this round
      const deadline = Date.now() + 300_000
      while (await consumed(sdk) < before + records) {
        if (Date.now() > deadline) throw new Error(`the workers consumed ${await consumed(sdk) - before} of ${records} records within 300 s`)
        await delay(50)
      }
      const consumedRate = records / ((performance.now() - started) / 1000)
      const asked = await produce(producers, records, async (p, i) => await sdk.call(`bench/sink#${i % 4}`, 'add', [{ i }], { messageId: newMessageId(), deadline: Date.now() + 30_000 }))
      parts.push(`${producers} producer(s) ${Math.round(emitted)} records/s acknowledged, ${Math.round(consumedRate)} consumed`)
      baselines.push(`${producers}: ${Math.round(asked)} asks/s, ratio ${(emitted / asked).toFixed(2)}`)
    }
    console.log(`bench stream-throughput: ${parts.join('; ')}; ${total} records into 4 partitions consumed by 3 replicas on 3 nodes, durability disk (a durable ask to a cell with the same producers ${baselines.join('; ')})`)
  } finally {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
