import { strict as assert } from 'node:assert'
import Fastify, { type FastifyInstance } from 'fastify'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { ping, type Ping } from '@libp2p/ping'
import { createStemMetrics, libp2pMetrics, registerMetricsRoute } from '../../src/metrics/index.js'

interface Family { type: string, help: string, samples: Array<{ name: string, labels: Record<string, string>, value: number }> }

/** A strict reader of the Prometheus text format 0.0.4: throws on any malformed line. */
function parseExposition (text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/
  const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/
  const familyOf = (name: string): Family | undefined => {
    for (const suffix of ['', '_bucket', '_sum', '_count', '_total']) {
      if (suffix !== '' && !name.endsWith(suffix)) continue
      const f = families.get(suffix === '' ? name : name.slice(0, -suffix.length))
      if (f != null) return f
    }
    return undefined
  }
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline')
  for (const line of text.split('\n').slice(0, -1)) {
    if (line === '') continue
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const [, kind, name, ...rest] = line.split(' ')
      assert.match(name, metricName, line)
      const family = families.get(name) ?? { type: '', help: '', samples: [] }
      if (kind === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest[0]), line)
        family.type = rest[0]
      } else family.help = rest.join(' ')
      families.set(name, family)
      continue
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`)
    const m = sample.exec(line)
    assert.ok(m != null, `malformed sample: ${line}`)
    const labels: Record<string, string> = {}
    let rest = m[2] ?? ''
    while (rest !== '') {
      const l = label.exec(rest)
      assert.ok(l != null, `malformed labels: ${line}`)
      labels[l[1]] = l[2]
      rest = rest.slice(l[0].length)
    }
    // values are Go floats: NaN and ±Inf in any letter case (prom-client writes `Nan`)
    const special = /^([+-]?)(inf|nan)$/i.exec(m[3])
    const value = special != null ? (special[2].toLowerCase() === 'nan' ? Number.NaN : Number(`${special[1]}Infinity`)) : Number(m[3])
    assert.ok(!Number.isNaN(value) || special != null, `bad value: ${line}`)
    const family = familyOf(m[1])
    assert.ok(family != null && family.type !== '', `sample without a TYPE: ${line}`)
    family.samples.push({ name: m[1], labels, value })
  }
  return families
}

describe('metrics', () => {
  let fastify: FastifyInstance | undefined
  const nodes: Libp2p[] = []

  afterEach(async () => {
    await fastify?.close()
    fastify = undefined
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  })

  it('serves every Stem family and the process metrics in valid exposition format', async () => {
    const metrics = createStemMetrics()
    metrics.messages.inc({ direction: 'in', kind: 'ask' }, 3)
    metrics.messages.inc({ direction: 'out', kind: 'reply' }, 3)
    metrics.askLatency.observe({ scope: 'remote' }, 0.004)
    metrics.rejectedFrames.inc({ reason: 'replay' })
    metrics.gatewayRequests.inc({ app: 'shop', status: '200' })
    metrics.raftLeaderChanges.inc({ app: 'shop' })
    // state read from components at scrape time
    let depth = 7
    metrics.addSource(() => {
      metrics.mailboxDepth.set({ app: 'shop', cell: 'counter#0' }, depth)
      metrics.cellStates.reset()
      metrics.cellStates.set({ state: 'transformed' }, 2)
      metrics.cellStates.set({ state: 'stem' }, 1)
      metrics.raftTerm.set({ app: 'shop' }, 4)
      metrics.raftCommitIndex.set({ app: 'shop' }, 120)
      for (const [resource, total, free] of [['cpu', 4, 2.5], ['memory', 2 ** 33, 2 ** 32], ['cells', 16, 13]] as const) {
        metrics.capacityContributed.set({ resource }, total)
        metrics.capacityFree.set({ resource }, free)
      }
    })
    metrics.addSource(() => { throw new Error('component gone') })

    fastify = Fastify()
    registerMetricsRoute(fastify, metrics)
    const url = await fastify.listen({ host: '127.0.0.1', port: 0 })
    const res = await fetch(url + '/metrics')
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const families = parseExposition(await res.text())

    const expect: Record<string, string> = {
      stem_messages_total: 'counter',
      stem_ask_duration_seconds: 'histogram',
      stem_mailbox_depth: 'gauge',
      stem_cells: 'gauge',
      stem_raft_term: 'gauge',
      stem_raft_commit_index: 'gauge',
      stem_raft_leader_changes_total: 'counter',
      stem_rejected_frames_total: 'counter',
      stem_capacity_contributed: 'gauge',
      stem_capacity_free: 'gauge',
      stem_gateway_requests_total: 'counter',
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge'
    }
    for (const [name, type] of Object.entries(expect)) {
      assert.equal(families.get(name)?.type, type, `${name} is a ${type}`)
      assert.ok((families.get(name)?.help ?? '') !== '', `${name} has help`)
    }
    const value = (family: string, labels: Record<string, string>, name = family): number | undefined =>
      families.get(family)?.samples.find(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
    assert.equal(value('stem_messages_total', { direction: 'in', kind: 'ask' }), 3)
    assert.equal(value('stem_ask_duration_seconds', { scope: 'remote' }, 'stem_ask_duration_seconds_count'), 1)
    assert.equal(value('stem_ask_duration_seconds', { scope: 'remote', le: '0.005' }, 'stem_ask_duration_seconds_bucket'), 1)
    assert.equal(value('stem_ask_duration_seconds', { scope: 'remote', le: '0.0025' }, 'stem_ask_duration_seconds_bucket'), 0)
    assert.equal(value('stem_mailbox_depth', { app: 'shop', cell: 'counter#0' }), 7)
    assert.equal(value('stem_cells', { state: 'transformed' }), 2)
    assert.equal(value('stem_raft_commit_index', { app: 'shop' }), 120)
    assert.equal(value('stem_capacity_free', { resource: 'cpu' }), 2.5)
    assert.equal(value('stem_gateway_requests_total', { app: 'shop', status: '200' }), 1)
    assert.equal(value('stem_metrics_source_errors_total', {}), 1, 'a throwing source is counted, not fatal')

    depth = 2
    const again = parseExposition(await (await fetch(url + '/metrics')).text())
    assert.equal(again.get('stem_mailbox_depth')?.samples[0].value, 2, 'sources run on every scrape')
  })

  it('each createStemMetrics has its own registry', async () => {
    const a = createStemMetrics({ defaultMetrics: false })
    const b = createStemMetrics({ defaultMetrics: false })
    a.rejectedFrames.inc({ reason: 'signature' })
    assert.match(await a.render(), /stem_rejected_frames_total\{reason="signature"\} 1/)
    assert.doesNotMatch(await b.render(), /reason="signature"/)
    assert.doesNotMatch(await b.render(), /process_cpu/)
  })

  it('includes libp2p\'s own metrics in the same registry', async () => {
    const metrics = createStemMetrics()
    const make = async (withMetrics: boolean): Promise<Libp2p<{ ping: Ping }>> => {
      const node = await createLibp2p({
        addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        services: { ping: ping() },
        ...(withMetrics ? { metrics: libp2pMetrics(metrics) } : {})
      })
      nodes.push(node)
      return node
    }
    const a = await make(true)
    const b = await make(false)
    await a.services.ping.ping(b.getMultiaddrs()[0], { signal: AbortSignal.timeout(20_000) })
    const families = parseExposition(await metrics.render())
    const transfer = families.get('libp2p_data_transfer_bytes_total')
    assert.equal(transfer?.type, 'counter')
    const sent = transfer.samples.find(s => s.labels.protocol === 'global sent')
    assert.ok(sent != null && sent.value > 0, 'bytes sent over the connection are counted')
    assert.ok([...families.keys()].filter(n => n.startsWith('libp2p_')).length > 3, 'libp2p registers its families')
    assert.equal(families.get('stem_messages_total')?.type, 'counter', 'Stem families are still there')
    assert.equal(families.get('process_cpu_seconds_total')?.type, 'counter', 'default metrics registered once')
  })
})
