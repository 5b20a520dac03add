// Stream failover (issue 20): 3 real `stem` nodes, a stream of 2 partitions (durability
// disk, one clone each) consumed by a group of 3 worker replicas, and a plain cell. A
// trial kills -9 the node holding partition 0's primary while records for partition 0 are
// emitted every 50 ms through a live node; the worker applying them keeps the time of the
// last one (one machine, one clock). Beside it, trials in the same run and mesh kill -9 the
// node holding the plain cell's primary, asked every 50 ms (bench cell-failover's figure).
// Each killed node is started again before the next trial.
//   stream-failover   kill -9 → the next record consumed from that partition
import { pickPartition } from '../src/cells/streams/partition.js'
import { newMessageId, type StemConnection } from '../src/messaging/sdk.js'
import { restartNode, type MeshNode } from '../scripts/support/stem-mesh.js'
import { waitFor } from '../scripts/support/wait.js'
import { cellsOf } from './support/cells-of.js'
import { every } from './support/pacing.js'
import { percentile } from './support/stats.js'
import { SINK, WORKER } from './support/stream-cells.js'
import { withStreamApp } from './support/stream-app.js'

const TRIALS = 5
const PARTITION = 'bench/orders-p0#0'
const CELL = 'bench/sink#0'
const MANIFEST = `app: bench
streams:
  orders: { partitions: 2, retention: 100000 }
cells:
  worker: { code: ./worker.js, replicas: 3, consumes: [orders] }
  sink: { code: ./sink.js }
`
// a key of partition 0 (of 2)
const KEY = Array.from({ length: 16 }, (_, i) => `k${i}`).find(k => pickPartition(k, 2) === 0) as string

/** the node holding `address`'s primary, once it and every watched instance run with a clone on live nodes */
async function settledHolder (nodes: MeshNode[], address: string): Promise<MeshNode> {
  const watched = [PARTITION, CELL, 'bench/worker#0']
  return await waitFor(async () => {
    const live = nodes.filter(n => n.process.running)
    const ids = new Set(live.map(n => n.process.peerId()))
    const cells = await cellsOf(live[0], 'bench')
    const ok = watched.every(a => {
      const c = cells.find(c => c.address === a)
      return c?.state === 'transformed' && ids.has(c.node) && c.clones.some(id => ids.has(id) && id !== c.node)
    })
    const node = cells.find(c => c.address === address)?.node
    return ok ? live.find(n => n.process.peerId() === node) : undefined
  }, { timeout: 120_000, what: `${address} and its clone to run on live nodes` })
}

/** when the worker of partition 0 last applied a record of it (0 while it cannot be asked) */
async function lastConsumed (sdk: StemConnection): Promise<number> {
  return await sdk.call('bench/worker#0', 'last', [0], { deadline: Date.now() + 1000 }).catch(() => 0) as number
}

/** ms from kill -9 of `victim` until `done` gives a time, while `probe` runs every 50 ms */
async function timeFailover (victim: MeshNode, probe: () => Promise<unknown>, done: (killed: number) => Promise<number | undefined>): Promise<number> {
  const killed = Date.now()
  victim.process.signal('SIGKILL')
  await victim.process.exited
  const probing = every(50, probe)
  try {
    const at = await waitFor(async () => await done(killed), { timeout: 90_000, interval: 20, what: 'the first answer after the kill' })
    return at - killed
  } finally {
    await probing.stop()
    await restartNode(victim)
  }
}

await withStreamApp(3, { 'app.yaml': MANIFEST, 'worker.js': WORKER, 'sink.js': SINK }, async ({ nodes, sdkOf }) => {
  const streams: number[] = []
  const cells: number[] = []
  for (let t = 0; t < TRIALS; t++) {
    // a partition's primary: records flowing to its consumer before the kill
    let victim = await settledHolder(nodes, PARTITION)
    let sdk = await sdkOf(nodes.find(n => n !== victim) as MeshNode)
    const orders = sdk.stream('bench/orders')
    const emit = async (): Promise<unknown> => await orders.emit({ t }, { key: KEY, messageId: newMessageId(), deadline: Date.now() + 30_000 })
    const before = await lastConsumed(sdk)
    await emit()
    await waitFor(async () => await lastConsumed(sdk) > before, { timeout: 30_000, what: 'a record consumed before the kill' })
    streams.push(await timeFailover(victim, emit, async killed => {
      const at = await lastConsumed(sdk)
      return at > killed ? at : undefined
    }))
    // a plain cell's primary
    victim = await settledHolder(nodes, CELL)
    sdk = await sdkOf(nodes.find(n => n !== victim) as MeshNode)
    await sdk.call(CELL, 'add', [{ t }])
    let answered: number | undefined
    cells.push(await timeFailover(victim, async () => { await sdk.call(CELL, 'get', [], { deadline: Date.now() + 1000 }); answered ??= Date.now() }, async () => answered))
    process.stderr.write(`stream-failover trial ${t + 1}: next record consumed ${streams[t]} ms, plain cell answered ${cells[t]} ms\n`)
  }
  const p50 = percentile(streams, 0.5)
  const cell50 = percentile(cells, 0.5)
  console.log(`bench stream-failover: p50 ${p50} ms, p99 ${percentile(streams, 0.99)} ms from kill -9 of the node holding a partition's primary to the next record consumed from that partition (records emitted every 50 ms), ${TRIALS} trials on 3 nodes, durability disk (cell-failover: kill -9 of a plain cell's primary host to its first answer, asked every 50 ms, p50 ${cell50} ms, p99 ${percentile(cells, 0.99)} ms, ratio ${(p50 / cell50).toFixed(2)})`)
})
