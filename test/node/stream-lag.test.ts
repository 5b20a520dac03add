// Stream lag where it can be seen (issue 20 "Visible"): `stem_stream_lag` and
// `stem_stream_next_offset` in /metrics from the partitions the pump serves on this node,
// going to 0 once the consumer caught up; the dashboard's per-stream table of an app
// (GET /dashboard/streams?app=APP), read from the partitions' `info` as `stem stream` does,
// never asking a cell of the app that only looks like a partition.
import assert from 'node:assert/strict'
import { createStreamPump } from '../../src/topology/streams/stream-pump.js'
import { partitionSource } from '../../src/cells/streams/partition-code.js'
import { RECORD_METHOD } from '../../src/cells/streams/partition.js'
import { createStemMetrics } from '../../src/metrics/index.js'
import { appStreamPartitions, appStreams, feedStreamMetrics, type InfoAsk } from '../../src/node/stream-lag.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import type { DashboardStreamPartition } from '../../src/dashboard/types.js'
import { waitFor } from '../support/wait.js'
import { startDashboard, type TestDashboard } from '../dashboard/helpers.js'

const stand = { now: () => Date.now(), error: (status: number, m: string) => Object.assign(new Error(m), { status }), response: (status: number, body: unknown) => ({ status, body }) }

type Method = (...args: unknown[]) => unknown
async function partitionCell (stream: string, partition: number, partitions: number): Promise<Record<string, Method>> {
  const source = partitionSource({ stream, partition, partitions, retention: 1000, maxBytes: 1_000_000, consumers: [{ cell: 'worker', mode: 'group' }] })
  const Cls = (await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`) as { default: new () => Record<string, Method> }).default
  return new Cls()
}

/** asks to the partitions by `app/cell` or `app/cell#0`; any other cell answering `info` is a failure */
function asker (partitions: Record<string, Record<string, Method>>, asked: string[] = []): InfoAsk {
  return async (address, method, args) => {
    asked.push(address)
    const cell = partitions[address.replace(/#0$/, '')]
    if (cell === undefined) throw new Error(`cannot reach ${address}`)
    return JSON.parse(JSON.stringify(cell[method](...args) ?? null))
  }
}

/** the value of the sample of `name` whose labels include `labels` in the exposition text */
function sample (text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line)
    if (m?.[1] !== name) continue
    if (Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) return Number(m[3])
  }
  return undefined
}

describe('stream lag in /metrics and on the dashboard', () => {
  beforeEach(() => { Object.assign(globalThis, { stem: stand }) })

  it('stem_stream_lag shows the records a group has not acknowledged, and goes to 0 once it consumed them', async () => {
    const partition = await partitionCell('orders', 1, 2)
    const partitions = { 'shop/orders-p1': partition }
    let down = true
    let applied = 0
    const pump = createStreamPump({
      async ask (address, method, args) {
        if (method !== RECORD_METHOD) return await asker(partitions)(address, method, args, { deadline: 0 })
        if (down) throw new Error('cannot reach node: unreachable')
        applied += (args[3] as unknown[]).length
        return null
      },
      isLocalPrimary: () => true,
      announcement: () => ({ cells: [{ name: 'worker', replicas: 1 }] }) as unknown as AppAnnouncement,
      log: () => {}
    }, { retryMs: 20 })
    const metrics = createStemMetrics({ defaultMetrics: false })
    feedStreamMetrics(metrics, () => pump.partitions(), asker(partitions))
    try {
      for (let i = 0; i < 5; i++) partition.append(i, null)
      pump.onSnapshot('shop/orders-p1#0', '{"stemStream":"orders"}')
      assert.deepEqual(pump.partitions(), ['shop/orders-p1#0'])
      const before = await metrics.render()
      assert.equal(sample(before, 'stem_stream_lag', { app: 'shop', stream: 'orders', partition: '1', group: 'worker' }), 5, before)
      assert.equal(sample(before, 'stem_stream_next_offset', { app: 'shop', stream: 'orders', partition: '1' }), 5, before)
      down = false
      pump.onSnapshot('shop/orders-p1#0', '{"stemStream":"orders"}')
      await waitFor(async () => sample(await metrics.render(), 'stem_stream_lag', { group: 'worker' }) === 0, { what: 'the lag to go to 0' })
      assert.equal(applied, 5)
      assert.match(await metrics.render(), /# TYPE stem_stream_lag gauge/)
    } finally {
      pump.stop()
    }
  })

  it('a partition whose primary moved away leaves the metrics', async () => {
    const partition = await partitionCell('orders', 0, 1)
    let local = true
    const pump = createStreamPump({ ask: async () => await new Promise(() => {}), isLocalPrimary: () => local, announcement: () => undefined, log: () => {} })
    const metrics = createStemMetrics({ defaultMetrics: false })
    feedStreamMetrics(metrics, () => pump.partitions(), asker({ 'shop/orders-p0': partition }))
    try {
      pump.onSnapshot('shop/orders-p0#0', '{"stemStream":"orders"}')
      assert.equal(sample(await metrics.render(), 'stem_stream_next_offset', { stream: 'orders' }), 0)
      local = false
      assert.equal(sample(await metrics.render(), 'stem_stream_next_offset', { stream: 'orders' }), undefined)
    } finally {
      pump.stop()
    }
  })

  it('lists every partition of an app\'s streams with its groups, its dead-letter stream too, and asks no other cell', async () => {
    const p0 = await partitionCell('orders', 0, 2)
    const p1 = await partitionCell('orders', 1, 2)
    const dead = await partitionCell('orders.dead', 0, 1)
    p1.append('a', null)
    p1.append('b', null)
    p1.ack('worker', 0, 0)
    const asked: string[] = []
    // `clicks-p0` is a cell of the app: no stream clicks is declared (no `clicks_dead-p0`)
    const cells = ['worker', 'clicks-p0', 'orders-p0', 'orders-p1', 'orders_dead-p0']
    assert.deepEqual(appStreams(cells), ['orders', 'orders.dead'])
    const table = await appStreamPartitions('shop', cells, asker({ 'shop/orders-p0': p0, 'shop/orders-p1': p1, 'shop/orders_dead-p0': dead }, asked))
    assert.deepEqual(table, [
      // a group shows on a partition once a record was appended or read there
      { stream: 'orders', partition: 0, next: 0, groups: [] },
      { stream: 'orders', partition: 1, next: 2, groups: [{ group: 'worker', acked: 0, lag: 1 }] },
      { stream: 'orders.dead', partition: 0, next: 0, groups: [] }
    ])
    assert.ok(!asked.some(a => a.includes('clicks')), asked.join(' '))
    // a partition that cannot be read says why, the others are still shown
    const partial = await appStreamPartitions('shop', cells, asker({ 'shop/orders-p0': p0, 'shop/orders_dead-p0': dead }))
    assert.equal(partial.length, 3)
    assert.deepEqual(partial[1], { stream: 'orders', partition: 1, next: null, groups: [], error: 'cannot reach shop/orders-p1' })
  })

  describe('GET /dashboard/streams', () => {
    let dash: TestDashboard | undefined
    afterEach(async () => { await dash?.close(); dash = undefined })

    it('answers an app\'s stream table; a bad app name is a 400 with a one-line reason', async () => {
      const rows: DashboardStreamPartition[] = [{ stream: 'orders', partition: 0, next: 3, groups: [{ group: 'worker', acked: 1, lag: 1 }] }]
      dash = await startDashboard({ streams: async app => app === 'shop' ? rows : [] })
      assert.deepEqual(await (await fetch(`${dash.url}/dashboard/streams?app=shop`)).json(), rows)
      assert.deepEqual(await (await fetch(`${dash.url}/dashboard/streams?app=other`)).json(), [])
      const bad = await fetch(`${dash.url}/dashboard/streams?app=${encodeURIComponent('../x')}`)
      assert.equal(bad.status, 400)
      assert.match((await bad.json() as { error: string }).error, /name an app/)
    })
  })
})
