// Streams (issue 20) with real `stem` processes: three nodes, a stream of 4 partitions
// consumed by 3 worker replicas; 20,000 records emitted by 16 producers through the
// gateway (`POST /orders -> stream orders`) and the SDK (`client.stream('shop/orders').emit`),
// with a kill -9 during the run of a node that holds a worker and a partition's primary. Every acknowledged record's effect is in the workers' summed state
// exactly once, the records of each key arrive in order, and `stem stream` shows no lag;
// then `--reset earliest` replays the retained records into a broadcast consumer. A record
// the workers keep refusing lands in `orders.dead` and the lag in /metrics goes to 0.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { connect, newMessageId } from '../../src/messaging/sdk.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { gatewayOf, startMesh, stopNodes, type MeshNode } from '../../scripts/support/stem-mesh.js'
import type { PartitionInfo } from '../../src/cells/streams/partition-code.js'

const WORKER = `
export default class Worker {
  seen = {}
  onRecord (record, meta) {
    if (meta.stream !== 'orders' || typeof meta.offset !== 'number' || meta.key !== record.key) throw new Error('bad meta ' + JSON.stringify(meta))
    if (record.poison === true) throw new Error('poison record')
    ;(this.seen[record.key] ??= []).push(record.seq)
  }
  dump () { return this.seen }
}
`
const AUDIT = `
export default class Audit {
  count = 0
  onRecord () { this.count++ }
  get () { return this.count }
}
`
const MANIFEST = `app: shop
streams:
  orders: { partitions: 4, retention: 2000 }
cells:
  worker: { code: ./worker.js, replicas: 3, consumes: [orders] }
  audit: { code: ./audit.js, consumes: [{ stream: orders, mode: broadcast }] }
routes:
  - POST /orders -> stream orders
`
const KEYS = 16
const PER_KEY = 1250

interface Acked { key: string, seq: number }

async function sdkVia (node: MeshNode): Promise<ReturnType<typeof connect>> {
  const token = (await readFile(join(node.dataDir, 'api-token'), 'utf8')).trim()
  return connect({ url: await apiUrlOf(node.dataDir), token })
}

/** One key's records through the gateway, one after the other; a failed request is not retried (its seq may or may not be in) */
async function produceHttp (gateway: string, key: string, acked: Acked[], sent: Set<string>): Promise<void> {
  for (let seq = 0; seq < PER_KEY; seq++) {
    sent.add(`${key}:${seq}`)
    const res = await fetch(`${gateway}/shop/orders?key=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, seq }), signal: AbortSignal.timeout(30_000) }).catch(() => undefined)
    if (res === undefined) continue
    const body = await res.json() as { partition?: number, offset?: number }
    if (res.status === 202) {
      assert.ok(Number.isInteger(body.partition) && Number.isInteger(body.offset), JSON.stringify(body))
      acked.push({ key, seq })
    } else {
      // not acknowledged: full (429), away (503, 504), or its state not yet on a clone while the clone's node dies (500)
      assert.ok([429, 500, 503, 504].includes(res.status), `unexpected ${res.status} ${JSON.stringify(body)}`)
    }
  }
}

/** One key's records through the SDK; a failed emit is retried with its message id, so it appends once */
async function produceSdk (node: MeshNode, key: string, acked: Acked[], sent: Set<string>): Promise<void> {
  const orders = (await sdkVia(node)).stream('shop/orders')
  for (let seq = 0; seq < PER_KEY; seq++) {
    sent.add(`${key}:${seq}`)
    const messageId = newMessageId()
    const ack = await waitFor(async () => await orders.emit({ key, seq }, { key, messageId, deadline: Date.now() + 20_000 }), { timeout: 120_000, what: `record ${key}:${seq} to be acknowledged` })
    assert.ok(Number.isInteger(ack.partition) && Number.isInteger(ack.offset), `emit answered ${JSON.stringify(ack)}`)
    acked.push({ key, seq })
  }
}

async function workersSeen (node: MeshNode): Promise<Record<string, number[]> | undefined> {
  const sdk = await sdkVia(node)
  const all: Record<string, number[]> = {}
  for (let i = 0; i < 3; i++) {
    const seen = await sdk.call(`shop/worker#${i}`, 'dump', [], { deadline: Date.now() + 5000 }).catch(() => undefined) as Record<string, number[]> | undefined
    if (seen === undefined) return undefined
    for (const [key, seqs] of Object.entries(seen)) {
      assert.equal(all[key], undefined, `key ${key} was consumed by two workers`)
      all[key] = seqs
    }
  }
  return all
}

describe('streams with real stem processes', function () {
  this.timeout(1_800_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-streams-'))
    await writeFile(join(dir, 'worker.js'), WORKER)
    await writeFile(join(dir, 'audit.js'), AUDIT)
    await writeFile(join(dir, 'app.yaml'), MANIFEST)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('records from the gateway and the SDK, with a kill -9 of a node mid-run: each acknowledged record applied exactly once, in order per key; --reset replays', async () => {
    const nodes = await startMesh(3)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    await waitFor(async () => {
      const cells = (await stemJson<AppCellsListing[]>(['cells', 'shop', '--data', nodes[0].dataDir]))[0]?.cells ?? []
      return cells.length === 9 && cells.every(c => c.state === 'transformed' && c.clones.length > 0)
    }, { timeout: 120_000, what: 'the workers, the audit, the 4 partitions and that of orders.dead with their clones to be placed' })

    // the victim runs a worker (one on each node) and a partition's primary (4 on 3 nodes);
    // the producers go through the gateway and the SDK of the two others
    const cells = (await stemJson<AppCellsListing[]>(['cells', 'shop', '--data', nodes[0].dataDir]))[0].cells
    const victim = nodes.find(n => cells.some(c => /\/orders-p\d#/.test(c.address) && c.node === n.process.peerId()))
    assert.ok(victim !== undefined, JSON.stringify(cells))
    const [front, back] = nodes.filter(n => n !== victim)
    const acked: Acked[] = []
    const sent = new Set<string>()
    const gateway = gatewayOf(front.process)
    const producers = [
      ...Array.from({ length: KEYS / 2 }, async (_, i) => { await produceHttp(gateway, `h${i}`, acked, sent) }),
      ...Array.from({ length: KEYS / 2 }, async (_, i) => { await produceSdk(back, `s${i}`, acked, sent) })
    ]
    await waitFor(() => acked.length >= KEYS * PER_KEY / 4, { timeout: 900_000, what: 'a quarter of the records to be acknowledged' })
    await stopNodes([victim], 'SIGKILL')
    await Promise.all(producers)
    assert.ok(acked.length >= KEYS * PER_KEY / 2, `only ${acked.length} records acknowledged`)
    // one record the workers refuse: it goes to orders.dead, the others go on
    const poison = await waitFor(async () => {
      const res = await fetch(`${gateway}/shop/orders?key=poison`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'poison', seq: 0, poison: true }), signal: AbortSignal.timeout(30_000) }).catch(() => undefined)
      return res?.status === 202 && await res.json() as { partition: number, offset: number }
    }, { timeout: 60_000, what: 'the poison record to be acknowledged' })

    const survivor = front
    const seen = await waitFor(async () => {
      const s = await workersSeen(survivor)
      return s !== undefined && acked.every(a => s[a.key]?.includes(a.seq)) && s
    }, { timeout: 600_000, what: 'every acknowledged record to reach a worker' }).catch(async (err: Error) => {
      const s = await workersSeen(survivor)
      const missing = acked.filter(a => s?.[a.key]?.includes(a.seq) !== true).map(a => `${a.key}:${a.seq}`)
      const streams = await stemJson(['stream', 'shop/orders', '--json', '--data', survivor.dataDir]).catch((e: Error) => e.message)
      throw new Error(`${err.message}: missing ${missing.length} (${missing.slice(0, 20).join(' ')}); stream ${JSON.stringify(streams)}`)
    })
    for (const [key, seqs] of Object.entries(seen)) {
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `key ${key}: ${seqs[i]} after ${seqs[i - 1]}: duplicate or out of order (${seqs.join(',')})`)
      for (const seq of seqs) assert.ok(sent.has(`${key}:${seq}`), `key ${key}: ${seq} was never sent`)
    }

    // every group caught up; then a replay from the earliest record kept
    const info = await waitFor(async () => {
      const out = await stemJson<{ partitions: PartitionInfo[] }>(['stream', 'shop/orders', '--json', '--data', survivor.dataDir])
      return out.partitions.every(p => Object.values(p.groups).every(g => g.lag === 0)) && out
    }, { timeout: 120_000, what: 'every consumer group to have no lag' })
    const total = info.partitions.reduce((n, p) => n + p.next, 0)
    assert.ok(total >= acked.length, `${total} records in the stream, ${acked.length} acknowledged`)
    // the poison record was moved to orders.dead (after its 3 attempts), then skipped
    const dead = await stemJson<{ partitions: PartitionInfo[] }>(['stream', 'shop/orders.dead', '--json', '--data', survivor.dataDir])
    assert.equal(dead.partitions.length, 1)
    assert.ok(dead.partitions[0].next >= 1, `orders.dead holds the poison record (${JSON.stringify(poison)}): ${JSON.stringify(dead)}`)
    // the same lag in /metrics: each partition exported by the survivor running its primary, at 0
    await waitFor(async () => {
      const texts = await Promise.all([front, back].map(async n => await (await fetch(`${await apiUrlOf(n.dataDir)}/metrics`)).text()))
      const lines = texts.join('\n').split('\n').filter(l => l.startsWith('stem_stream_lag{') && l.includes('stream="orders"') && l.includes('group="worker"'))
      return new Set(lines.map(l => /partition="(\d+)"/.exec(l)?.[1])).size === 4 && lines.every(l => l.endsWith(' 0'))
    }, { timeout: 60_000, what: 'stem_stream_lag of every partition at 0 in the survivors\' /metrics' })
    const sdk = await sdkVia(survivor)
    const before = await sdk.call('shop/audit#0', 'get', []) as number
    assert.equal(before, total, 'the broadcast consumer saw every record once')
    // retention keeps the last 2000 records of each partition: those are replayed
    const kept = (await stemJson<{ partitions: PartitionInfo[] }>(['stream', 'shop/orders', '--json', '--data', survivor.dataDir])).partitions.reduce((n, p) => n + p.records, 0)
    assert.ok(kept > 0 && kept <= 4 * 2000, `${kept} records kept`)
    await stemJson(['stream', 'shop/orders', '--group', 'audit', '--reset', 'earliest', '--json', '--data', survivor.dataDir])
    await waitFor(async () => await sdk.call('shop/audit#0', 'get', []).catch(() => 0) === total + kept, { timeout: 120_000, what: 'the audit to see every record kept again after --reset earliest' })
  })
})
