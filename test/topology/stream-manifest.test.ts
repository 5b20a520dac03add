// The manifest's streams, consumers and stream routes (issue 20): parsed, and malformed
// input refused with the field and the reason; the publisher's expansion into partition cells;
// the dead-letter stream `<stream>.dead` every stream has.
import assert from 'node:assert/strict'
import { parseManifest, ManifestError } from '../../src/topology/manifest.js'
import { expandStreams, STREAM_ROUTE_HANDLER, streamLimits } from '../../src/topology/streams/stream-manifest.js'
import { deadLetterStream, parseStreamAddress, partitionCell, partitionOfCell } from '../../src/cells/streams/partition.js'
import { parseAddress } from '../../src/cells/address.js'
import { streamGatewayRoute } from '../../src/topology/streams/stream-routes.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'

const GOOD = `app: shop
streams:
  orders: { partitions: 4, retention: 100000 }
  clicks: { retention: 1d }
cells:
  worker: { code: ./worker.js, replicas: 3, consumes: [orders] }
  audit: { code: ./audit.js, consumes: [{ stream: orders, mode: broadcast }, clicks] }
routes:
  - POST /orders -> stream orders
  - GET /x -> worker.get
`

function problems (text: string): string[] {
  try {
    parseManifest(text, 'app.yaml')
  } catch (err) {
    assert.ok(err instanceof ManifestError, String(err))
    return err.lines()
  }
  assert.fail('the manifest was accepted')
}

describe('manifest streams', () => {
  it('parses streams, consumers (group by default, broadcast) and stream routes', () => {
    const m = parseManifest(GOOD, 'app.yaml')
    assert.deepEqual(m.streams, {
      orders: { partitions: 4, retention: 100000 },
      clicks: { partitions: 4, retention: 100000, retentionMs: 86_400_000 },
      // the dead-letter streams: one partition, the same retention
      'orders.dead': { partitions: 1, retention: 100000 },
      'clicks.dead': { partitions: 1, retention: 100000, retentionMs: 86_400_000 }
    })
    assert.deepEqual(m.cells.worker.consumes, [{ stream: 'orders', mode: 'group' }])
    assert.deepEqual(m.cells.audit.consumes, [{ stream: 'orders', mode: 'broadcast' }, { stream: 'clicks', mode: 'group' }])
    assert.deepEqual(m.routes.find(r => r.stream !== undefined), { method: 'POST', path: '/orders', cell: 'orders-p0', handler: STREAM_ROUTE_HANDLER, stream: 'orders' })
  })

  it('a manifest without streams has no streams field (its hash is unchanged)', () => {
    const m = parseManifest('app: a\ncells:\n  c: { code: ./c.js }\n', 'app.yaml')
    assert.equal('streams' in m, false)
    assert.equal(m.cells.c.consumes, undefined)
  })

  const bad: Array<[string, string, RegExp]> = [
    ['streams not a mapping', 'streams: [orders]\n', /streams: a list is not a mapping/],
    ['bad stream name', 'streams:\n  Orders: {}\n', /streams\.Orders: "Orders" is not a valid stream name/],
    ['partitions out of range', 'streams:\n  orders: { partitions: 0 }\n', /streams\.orders\.partitions: 0 is out of range/],
    ['partitions not an integer', 'streams:\n  orders: { partitions: 2.5 }\n', /partitions: 2.5 is not an integer/],
    ['too many partitions in all', 'streams:\n  a: { partitions: 32 }\n  b: { partitions: 32 }\n', /has 64 partitions in all/],
    ['retention negative', 'streams:\n  orders: { retention: -1 }\n', /retention: -1 is not a record count/],
    ['retention nonsense', 'streams:\n  orders: { retention: soon }\n', /streams\.orders\.retention:/],
    ['unknown stream field', 'streams:\n  orders: { partition: 2 }\n', /streams\.orders\.partition: unknown field/],
    ['consumes an undeclared stream', 'streams:\n  orders: {}\n', /cells\.c\.consumes\[0\]: stream "nope" is not defined/, ],
    ['bad mode', 'streams:\n  orders: {}\n', /consumes\[0\]\.mode: "all" is not a mode/],
    ['a cell takes a partition\'s name', 'streams:\n  orders: {}\n', /cells\.orders-p1: the name is taken by a partition of stream orders/],
    ['a stream route to an undeclared stream', 'streams:\n  orders: {}\n', /routes\[0\]: stream "nope" is not defined/],
    ['a GET stream route', 'streams:\n  orders: {}\n', /routes\[0\]: a stream route takes POST or PUT/],
    ['a keyed consumer', 'streams:\n  orders: {}\n', /cells\.c\.consumes: a keyed cell cannot consume streams/],
    ['a stream named like a dead-letter stream', 'streams:\n  orders.dead: {}\n', /streams\.orders\.dead: "orders\.dead" is not a valid stream name/],
    ['a stream route to a dead-letter stream', 'streams:\n  orders: {}\n', /routes\[0\]: stream "orders\.dead" is a dead-letter stream: only Stem appends to it/],
    ['consuming the dead-letter stream of an undeclared stream', 'streams:\n  orders: {}\n', /cells\.c\.consumes\[0\]: stream "nope\.dead" is not defined/]
  ]
  const cellsOf: Record<string, string> = {
    'consumes an undeclared stream': '  c: { code: ./c.js, consumes: [nope] }\n',
    'bad mode': '  c: { code: ./c.js, consumes: [{ stream: orders, mode: all }] }\n',
    'a cell takes a partition\'s name': '  orders-p1: { code: ./c.js }\n',
    'a keyed consumer': '  c: { code: ./c.js, keyed: true, consumes: [orders] }\n',
    'consuming the dead-letter stream of an undeclared stream': '  c: { code: ./c.js, consumes: [nope.dead] }\n'
  }
  const routesOf: Record<string, string> = {
    'a stream route to an undeclared stream': 'routes:\n  - POST /o -> stream nope\n',
    'a GET stream route': 'routes:\n  - GET /o -> stream orders\n',
    'a stream route to a dead-letter stream': 'routes:\n  - POST /o -> stream orders.dead\n'
  }
  for (const [what, streams, expected] of bad) {
    it(`refuses ${what}, naming the field`, () => {
      const text = `app: a\n${streams}cells:\n${cellsOf[what] ?? '  c: { code: ./c.js }\n'}${routesOf[what] ?? ''}`
      const lines = problems(text)
      assert.ok(lines.some(l => expected.test(l)), lines.join('\n'))
    })
  }

  it('a cell consumes a dead-letter stream like any stream', () => {
    const m = parseManifest(GOOD.replace('cells:\n', 'cells:\n  medic: { code: ./medic.js, consumes: [orders.dead] }\n'), 'app.yaml')
    assert.deepEqual(m.cells.medic.consumes, [{ stream: 'orders.dead', mode: 'group' }])
    assert.deepEqual(expandStreams(m).find(p => p.stream === 'orders.dead')?.consumers, [{ cell: 'medic', mode: 'group' }])
  })

  it('names the cell of a dead-letter stream\'s partition apart from every declared stream\'s, and back', () => {
    assert.equal(partitionCell('orders.dead', 0), 'orders_dead-p0')
    assert.equal(partitionCell('orders-dead', 0), 'orders-dead-p0')
    assert.deepEqual(partitionOfCell('orders_dead-p0'), { stream: 'orders.dead', partition: 0 })
    assert.deepEqual(partitionOfCell('orders-dead-p0'), { stream: 'orders-dead', partition: 0 })
    assert.deepEqual(partitionOfCell('a-p1-p12'), { stream: 'a-p1', partition: 12 })
    assert.equal(partitionOfCell('worker'), undefined)
    // `stem stream APP/STREAM` takes a dead-letter stream too
    assert.deepEqual(parseStreamAddress('shop/orders.dead'), { app: 'shop', stream: 'orders.dead' })
    assert.deepEqual(parseStreamAddress('shop/orders'), { app: 'shop', stream: 'orders' })
    for (const bad of ['shop', 'shop/orders#1', 'shop/orders.live', 'shop/a/b', 'sh op/orders']) assert.throws(() => parseStreamAddress(bad), /invalid stream address .*: expected APP\/STREAM/)
    // the longest stream name still fits a cell address
    const longest = 'a'.repeat(streamLimits.maxNameLength)
    assert.deepEqual(parseAddress(`shop/${partitionCell(deadLetterStream(longest), 0)}#0`).cell, `${longest}_dead-p0`)
  })

  it('the publisher adds one cell per partition, with the consumers of its stream', () => {
    const m = parseManifest(GOOD, 'app.yaml')
    const parts = expandStreams(m)
    assert.deepEqual(parts.map(p => p.cell), ['clicks-p0', 'clicks-p1', 'clicks-p2', 'clicks-p3', 'orders-p0', 'orders-p1', 'orders-p2', 'orders-p3', 'clicks_dead-p0', 'orders_dead-p0'])
    assert.deepEqual(parts.at(-1)?.consumers, [])
    assert.equal(m.cells['orders_dead-p0'].replicas, 1)
    // a cell's default memory, not a partition's: every stream has one
    assert.equal(m.cells['orders_dead-p0'].memory, 32 * 2 ** 20)
    assert.equal(m.cells['orders-p0'].memory, 128 * 2 ** 20)
    assert.deepEqual(parts[0].consumers, [{ cell: 'audit', mode: 'group' }])
    assert.deepEqual(parts[4].consumers, [{ cell: 'audit', mode: 'broadcast' }, { cell: 'worker', mode: 'group' }])
    assert.equal(m.cells['orders-p3'].replicas, 1)
    assert.equal(m.cells['orders-p3'].durability, 'disk')
  })

  it('the gateway gets the stream and its partition count from an announcement', () => {
    const a = { cells: ['orders-p0', 'orders-p1', 'orders-p2', 'worker', 'orders-px'].map(name => ({ name, replicas: 1 })) } as unknown as AppAnnouncement
    assert.deepEqual(streamGatewayRoute(a, { cell: 'orders-p0', handler: STREAM_ROUTE_HANDLER }), { cell: 'orders', partitions: 3 })
    assert.deepEqual(streamGatewayRoute(a, { cell: 'worker', handler: 'get' }), {})
  })

  describe('autoscale', () => {
    const withWorker = (worker: string, extra = ''): string => `app: a\nstreams:\n  orders: {}\ncells:\n  worker: ${worker}\n${extra}`

    it('takes { min, max, lag } on a group consumer; replicas start at min unless written within the bounds', () => {
      const m = parseManifest(withWorker('{ code: ./w.js, consumes: [orders], autoscale: { min: 2, max: 6, lag: 1000 } }'), 'app.yaml')
      assert.deepEqual(m.cells.worker.autoscale, { min: 2, max: 6, lag: 1000 })
      assert.equal(m.cells.worker.replicas, 2)
      const written = parseManifest(withWorker('{ code: ./w.js, replicas: 3, consumes: [orders], autoscale: { max: 6, lag: 10 } }'), 'app.yaml')
      // min defaults to 1
      assert.deepEqual(written.cells.worker.autoscale, { min: 1, max: 6, lag: 10 })
      assert.equal(written.cells.worker.replicas, 3)
      // the SPEC's example
      assert.deepEqual(parseManifest(withWorker('{ code: ./w.js, replicas: 3, consumes: [orders], autoscale: { min: 1, max: 6, lag: 1000 } }'), 'app.yaml').cells.worker.autoscale, { min: 1, max: 6, lag: 1000 })
    })

    const malformed: Array<[string, string, RegExp]> = [
      ['min over max', '{ code: ./w.js, consumes: [orders], autoscale: { min: 4, max: 2, lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale: min 4 is more than max 2$/],
      ['a negative min', '{ code: ./w.js, consumes: [orders], autoscale: { min: -1, max: 2, lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale\.min: -1 is out of range \(1\.\.1000\)$/],
      ['a negative lag', '{ code: ./w.js, consumes: [orders], autoscale: { max: 2, lag: -5 } }', /^app\.yaml: cells\.worker\.autoscale\.lag: -5 is out of range \(1\.\.1000000000\)$/],
      ['a lag that is not a number', '{ code: ./w.js, consumes: [orders], autoscale: { max: 2, lag: lots } }', /^app\.yaml: cells\.worker\.autoscale\.lag: "lots" is not a whole number$/],
      ['a fractional max', '{ code: ./w.js, consumes: [orders], autoscale: { max: 2.5, lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale\.max: 2\.5 is not a whole number$/],
      ['no max', '{ code: ./w.js, consumes: [orders], autoscale: { lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale\.max: is required$/],
      ['no lag', '{ code: ./w.js, consumes: [orders], autoscale: { max: 3 } }', /^app\.yaml: cells\.worker\.autoscale\.lag: is required$/],
      ['an unknown field', '{ code: ./w.js, consumes: [orders], autoscale: { max: 3, lag: 10, step: 2 } }', /^app\.yaml: cells\.worker\.autoscale\.step: unknown field \(expected one of min, max, lag\)$/],
      ['not a mapping', '{ code: ./w.js, consumes: [orders], autoscale: 3 }', /^app\.yaml: cells\.worker\.autoscale: 3 is not a mapping \(expected \{ min, max, lag \}\)$/],
      ['a cell that consumes no stream', '{ code: ./w.js, autoscale: { max: 3, lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale: only a cell that consumes a stream \(consumes: \[\.\.\.\]\) autoscales by its lag$/],
      ['a broadcast consumer', '{ code: ./w.js, consumes: [{ stream: orders, mode: broadcast }], autoscale: { max: 3, lag: 10 } }', /^app\.yaml: cells\.worker\.autoscale: a broadcast consumer's every instance gets every record/],
      ['replicas outside the bounds', '{ code: ./w.js, replicas: 5, consumes: [orders], autoscale: { max: 3, lag: 10 } }', /^app\.yaml: cells\.worker\.replicas: 5 is outside autoscale's 1\.\.3$/]
    ]
    for (const [what, worker, expected] of malformed) {
      it(`refuses ${what} with one line naming the field`, () => {
        const lines = problems(withWorker(worker))
        assert.ok(lines.some(l => expected.test(l)), lines.join('\n'))
        assert.ok(lines.every(l => !l.includes('\n')))
      })
    }

    it('changes the manifest hash only when present (apps published before keep theirs)', async () => {
      const { manifestHash } = await import('../../src/topology/manifest-canonical.js')
      const plain = parseManifest(withWorker('{ code: ./w.js, consumes: [orders] }'), 'app.yaml')
      const scaled = parseManifest(withWorker('{ code: ./w.js, consumes: [orders], autoscale: { max: 3, lag: 10 } }'), 'app.yaml')
      const other = parseManifest(withWorker('{ code: ./w.js, consumes: [orders], autoscale: { max: 3, lag: 20 } }'), 'app.yaml')
      assert.equal(scaled.cells.worker.replicas, plain.cells.worker.replicas)
      assert.equal(new Set([manifestHash(plain), manifestHash(scaled), manifestHash(other)]).size, 3)
      assert.equal('autoscale' in plain.cells.worker, false)
    })
  })
})
