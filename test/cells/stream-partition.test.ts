// Stream partitions (issue 20), pure parts: the key → partition choice, the consumer's
// cursor rule, and the partition cell's code (run here with a stand-in `stem`): offsets,
// reads from a group's cursor, acks, retention, back-pressure and resets.
import assert from 'node:assert/strict'
import { cursorAccepts, pickPartition, partitionCell } from '../../src/cells/streams/partition.js'
import { partitionSource, type PartitionConfig } from '../../src/cells/streams/partition-code.js'

class StemError extends Error {
  constructor (readonly status: number, message: string) { super(message) }
}
let clock = 1_000_000
// the partition code's `stem`, set per test (other test files set their own)
const stand = { now: () => clock, error: (status: number, message: string) => new StemError(status, message), response: (status: number, body: unknown) => ({ status, body }) }

interface Partition {
  append: (record: unknown, key?: string | null, from?: unknown) => { partition: number, offset: number, repeated?: true }
  hold: (group: string, address: unknown) => boolean
  $post: (request: unknown) => { status: number, body: unknown }
  read: (group: string, max?: number) => { gen: number, records: Array<[number, string | null, number, unknown]>, holder: string | null }
  ack: (group: string, offset: number, gen: number) => boolean
  reset: (group: string, where: unknown) => { base: number, next: number, groups: Record<string, { acked: number, gen: number, lag: number }> }
  info: () => { base: number, next: number, records: number, groups: Record<string, { acked: number, gen: number, lag: number, holder?: string }> }
}

async function partition (config: Partial<PartitionConfig> = {}): Promise<Partition> {
  const source = partitionSource({ stream: 'orders', partition: 1, partitions: 4, retention: 5, maxBytes: 100_000, consumers: [{ cell: 'worker', mode: 'group' }], ...config })
  const Cls = (await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`) as { default: new () => Partition }).default
  return new Cls()
}

function throwsStatus (fn: () => unknown, status: number, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof StemError && err.status === status && message.test(err.message))
}

describe('stream partitions', () => {
  beforeEach(() => { Object.assign(globalThis, { stem: stand }) })

  it('picks the same partition for a key every time, spreads keys, and stays in range', () => {
    assert.equal(partitionCell('orders', 3), 'orders-p3')
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) {
      const p = pickPartition(`key-${i}`, 4)
      assert.equal(pickPartition(`key-${i}`, 4), p)
      counts[p]++
    }
    for (const c of counts) assert.ok(c > 800, `uneven: ${counts.join(',')}`)
    for (let i = 0; i < 100; i++) { const p = pickPartition(null, 3); assert.ok(p >= 0 && p < 3) }
    assert.equal(pickPartition('\u{1F600}-é', 1), 0)
  })

  it('a consumer applies a record only past its cursor, and anything of a later reset generation', () => {
    assert.equal(cursorAccepts(undefined, 0, 0), true)
    assert.equal(cursorAccepts([0, 5], 0, 5), false, 'a repeated delivery is skipped')
    assert.equal(cursorAccepts([0, 5], 0, 3), false)
    assert.equal(cursorAccepts([0, 5], 0, 6), true)
    assert.equal(cursorAccepts([0, 5], 1, 0), true, 'a reset replays')
    assert.equal(cursorAccepts([2, 5], 1, 9), false, 'a delivery of an older generation is stale')
  })

  it('appends with consecutive offsets, reads from a group\'s cursor, acks move it', async () => {
    const p = await partition()
    assert.deepEqual(p.append({ a: 1 }, 'k'), { partition: 1, offset: 0 })
    assert.deepEqual(p.$post({ query: { key: 'k' }, body: { a: 2 } }), { status: 202, body: { partition: 1, offset: 1 } })
    const read = p.read('worker')
    assert.deepEqual(read.records.map(r => [r[0], r[1], r[3]]), [[0, 'k', { a: 1 }], [1, 'k', { a: 2 }]])
    assert.equal(p.ack('worker', 0, read.gen), true)
    assert.equal(p.ack('worker', 0, read.gen), false, 'a repeated ack changes nothing')
    assert.equal(p.ack('worker', 7, read.gen), false, 'an ack past the end is refused')
    assert.equal(p.ack('worker', 1, read.gen + 1), false, 'an ack of another generation is refused')
    assert.deepEqual(p.read('worker').records.map(r => r[0]), [1])
    assert.equal(p.read('worker', 0).records.length, 0)
  })

  it('refuses bad keys and oversized records with a status', async () => {
    const p = await partition({ maxBytes: 400 })
    throwsStatus(() => p.append(1, ''), 400, /key must be a string/)
    throwsStatus(() => p.append(1, 'x'.repeat(257)), 400, /key must be a string/)
    throwsStatus(() => p.append('y'.repeat(200), 'k'), 413, /record is too large/)
    throwsStatus(() => p.reset('worker', 'yesterday'), 400, /reset: expected earliest, latest or an offset/)
    throwsStatus(() => p.read(''), 400, /group must be a short string/)
  })

  it('back-pressure: a partition full of records its group has not consumed refuses appends with 429; consumed ones make room', async () => {
    const p = await partition()
    for (let i = 0; i < 5; i++) p.append(i, 'k')
    throwsStatus(() => p.append(5, 'k'), 429, /backpressure: partition orders\/1 is full \(5 records not yet consumed by group worker\)/)
    p.ack('worker', 1, 0)
    assert.equal(p.append(5, 'k').offset, 5)
    assert.deepEqual([p.info().base, p.info().next, p.info().records], [1, 6, 5], 'retention keeps 5: the oldest consumed one went')
  })

  it('without consumers, retention drops the oldest records; a duration drops old ones', async () => {
    const p = await partition({ consumers: [], retentionMs: 1000, retention: 100 })
    for (let i = 0; i < 3; i++) p.append(i, null)
    clock += 2000
    p.append(3, null)
    assert.deepEqual([p.info().base, p.info().next], [3, 4])
  })

  it('reset moves a group to earliest, latest or an offset (clamped), raising its generation', async () => {
    const p = await partition({ retention: 100 })
    for (let i = 0; i < 4; i++) p.append(i, 'k')
    p.ack('worker', 3, 0)
    assert.deepEqual(p.reset('worker', 'earliest').groups.worker, { acked: -1, gen: 1, lag: 4 })
    assert.deepEqual(p.read('worker').records.map(r => r[0]), [0, 1, 2, 3])
    assert.deepEqual(p.reset('worker', 2).groups.worker, { acked: 1, gen: 2, lag: 2 })
    assert.deepEqual(p.reset('worker', 99).groups.worker, { acked: 3, gen: 3, lag: 0 })
    assert.deepEqual(p.reset('worker', 'latest').groups.worker, { acked: 3, gen: 4, lag: 0 })
    assert.equal(p.read('worker').gen, 4)
  })

  it('an append that names its place in another log is kept once: a repeat answers the first copy\'s offset', async () => {
    const p = await partition({ retention: 100 })
    assert.deepEqual(p.append('a', null, ['orders/2/worker', 0, 7]), { partition: 1, offset: 0 })
    assert.deepEqual(p.append('a again', null, ['orders/2/worker', 0, 7]), { partition: 1, offset: 0, repeated: true })
    // an earlier place of the same source is a repeat too; a later one, another source or a later reset generation are not
    assert.equal(p.append('older', null, ['orders/2/worker', 0, 3]).repeated, true)
    assert.deepEqual(p.append('b', null, ['orders/2/worker', 0, 9]), { partition: 1, offset: 1 })
    assert.deepEqual(p.append('c', null, ['orders/1/worker', 0, 9]), { partition: 1, offset: 2 })
    assert.deepEqual(p.append('d', null, ['orders/2/worker', 1, 0]), { partition: 1, offset: 3 })
    assert.equal(p.info().next, 4)
    for (const bad of [['__proto__', 0, 1], ['x', '0', 1], ['x', 0], 'x', ['', 0, 1], ['a b', 0, 1]]) throwsStatus(() => p.append('z', null, bad), 400, /from must be \[source, gen, offset\]/)
    assert.equal(p.info().next, 4)
  })

  it('keeps the instance a group is delivered to', async () => {
    const p = await partition()
    p.append('a')
    assert.equal(p.read('worker').holder, null)
    assert.equal(p.hold('worker', 'shop/worker#1'), true)
    assert.equal(p.read('worker').holder, 'shop/worker#1')
    assert.equal(p.info().groups.worker.holder, 'shop/worker#1')
    throwsStatus(() => p.hold('worker', 7), 400, /hold: expected an instance address/)
  })
})
