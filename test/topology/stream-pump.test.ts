// The delivery pump (issue 20) with stand-ins for the mesh: the partition is Stem's real
// partition code (with a stand-in `stem`), the consumers apply records with the real cursor
// rule. Records reach the assigned instance in order, a consumer that cannot be reached is
// retried, a repeated delivery is skipped by the cursor, a record the consumer keeps
// refusing goes to the dead-letter stream `<stream>.dead` with the error after the
// attempts, and only then is skipped.
import assert from 'node:assert/strict'
import { createStreamPump, deliveryTargets } from '../../src/topology/streams/stream-pump.js'
import { partitionSource } from '../../src/cells/streams/partition-code.js'
import { cursorAccepts, CURSOR_METHOD, RECORD_METHOD } from '../../src/cells/streams/partition.js'
import { CellError, crashText } from '../../src/cells/reply-meta.js'
import { waitFor } from '../support/wait.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import type { DeadLetter } from '../../src/topology/streams/dead-letter.js'
import type { PartitionInfo } from '../../src/cells/streams/partition-code.js'

// the partition code's `stem`, set per test (other test files set their own)
const stand = { now: () => Date.now(), error: (status: number, m: string) => Object.assign(new Error(m), { status }), response: (status: number, body: unknown) => ({ status, body }) }

type Method = (...args: unknown[]) => unknown
async function partitionCell (stream = 'orders', partition = 2, partitions = 4): Promise<Record<string, Method>> {
  const source = partitionSource({ stream, partition, partitions, retention: 1000, maxBytes: 1_000_000, consumers: [{ cell: 'worker', mode: 'group' }] })
  const Cls = (await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`) as { default: new () => Record<string, Method> }).default
  return new Cls()
}

class Consumer {
  cursor: [number, number] | undefined
  applied: unknown[] = []
  deliveries = 0
  /** the records of each delivery */
  sizes: number[] = []
  down = false
  refuse = new Set<unknown>()
  /** records whose onRecord loops past the cell's timeout: the cell crashes on them */
  crashOn = new Set<unknown>()
  crashes = 0
  /** ms the consumer's onRecord takes per record (answered with each delivery) */
  msPerRecord = 0
  /** ms after which a delivery times out, as a cell's call does */
  timeoutMs = Infinity
  deliver (gen: number, records: Array<[number, string | null, number, unknown]>): { applied: number, ms: number } {
    this.deliveries++
    this.sizes.push(records.length)
    if (this.down) throw new Error('cannot reach node: unreachable')
    // as a cell host answers a call past the cell's timeout: the cell crashed (no cell error)
    if (records.length * this.msPerRecord > this.timeoutMs) throw new Error(crashText('shop/worker#2', `exceeded its CPU time limit of ${this.timeoutMs} ms`))
    // the cell starts again from its last state: nothing of this delivery is kept
    if (records.some(r => this.crashOn.has(r[3]))) {
      this.crashes++
      throw new Error(crashText('shop/worker#2', 'exceeded its CPU time limit of 10000 ms'))
    }
    const before = { cursor: this.cursor, n: this.applied.length }
    for (const [offset, , , record] of records) {
      if (!cursorAccepts(this.cursor, gen, offset)) continue
      // one message: a refused record leaves the state as it was
      if (this.refuse.has(record)) { this.cursor = before.cursor; this.applied.length = before.n; throw new CellError('onRecord threw', { cell: 'shop/worker#2', method: 'onRecord' }) }
      this.applied.push(record)
      this.cursor = [gen, offset]
    }
    return { applied: records.length, ms: records.length * this.msPerRecord }
  }
}

/** partition cells by address; one that is absent is unreachable */
type Partitions = Record<string, Record<string, Method> | undefined>

/**
 * `deadDeclared`: whether the app's announcement has the dead-letter partition (not in an
 * app published before there were any); `workers`: the worker cell's announced replicas now
 */
function setup (partition: Record<string, Method> | Partitions, consumers: Record<string, Consumer>, logs: string[] = [], deadDeclared = true, workers = (): number => 3, tune: { batch?: number, deliveryMs?: number } = {}): ReturnType<typeof createStreamPump> {
  const announcement = (): AppAnnouncement => ({ cells: [{ name: 'worker', replicas: workers() }, ...(deadDeclared ? [{ name: 'orders_dead-p0', replicas: 1 }] : [])] }) as unknown as AppAnnouncement
  const partitions: Partitions = typeof partition.append === 'function' ? { 'shop/orders-p2#0': partition as Record<string, Method> } : partition as Partitions
  return createStreamPump({
    async ask (address, method, args) {
      if (method === CURSOR_METHOD) {
        const c = consumers[address]
        if (c === undefined || c.down) throw new Error(`cannot reach ${address}: unreachable`)
        return c.cursor ?? null
      }
      if (method === RECORD_METHOD) {
        const c = consumers[address]
        assert.ok(c !== undefined, `delivered to ${address}`)
        return c.deliver(args[2] as number, args[3] as Array<[number, string | null, number, unknown]>)
      }
      // the pump asks its own partition by instance, the dead-letter stream's as `app/cell`, as the SDK does
      const cell = partitions[address.includes('#') ? address : `${address}#0`]
      if (cell === undefined) throw new Error(`cannot reach ${address}: unreachable`)
      try {
        return JSON.parse(JSON.stringify(cell[method](...args) ?? null))
      } catch (err) {
        // as messaging answers a cell's `stem.error(status, …)`
        throw new CellError((err as Error).message, { cell: address, method, status: (err as { status?: number }).status })
      }
    },
    isLocalPrimary: () => true,
    announcement,
    log: line => { logs.push(line) }
  }, { retryMs: 20, batch: tune.batch ?? 4, deliveryMs: tune.deliveryMs })
}

describe('stream delivery pump', () => {
  beforeEach(() => { Object.assign(globalThis, { stem: stand }) })

  it('assigns partition p to instance p mod replicas in group mode, every instance in broadcast', () => {
    const replicas = (cell: string): number => ({ worker: 3, audit: 2, idle: 0 })[cell] ?? 0
    assert.deepEqual(deliveryTargets('shop', 4, [{ cell: 'worker', mode: 'group' }, { cell: 'audit', mode: 'broadcast' }, { cell: 'idle', mode: 'group' }], replicas), [
      { group: 'worker', address: 'shop/worker#1' },
      { group: 'audit#0', address: 'shop/audit#0' },
      { group: 'audit#1', address: 'shop/audit#1' }
    ])
  })

  it('delivers every record in order to the assigned instance, across an unreachable spell (one record a delivery until it is back), and acks it', async () => {
    const partition = await partitionCell()
    const worker = new Consumer()
    const pump = setup(partition, { 'shop/worker#2': worker })
    try {
      worker.down = true
      for (let i = 0; i < 10; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.deliveries >= 2, { what: 'a retry' })
      worker.down = false
      await waitFor(() => worker.applied.length === 10, { what: 'every record applied' })
      assert.deepEqual(worker.applied, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      // after the failed first batch, one record a delivery until one is applied; then whole batches
      const [firstBatch, ...rest] = worker.sizes
      assert.equal(firstBatch, 4)
      assert.deepEqual(rest.slice(-3), [4, 4, 1])
      assert.ok(rest.slice(0, -3).every(n => n === 1), `deliveries after the failure: ${rest.join(',')}`)
      await waitFor(() => (partition.info() as { groups: Record<string, { lag: number }> }).groups.worker.lag === 0, { what: 'the ack' })
      // a state that is not a partition's is ignored
      pump.onSnapshot('shop/worker#0', '{"seen":{}}')
      assert.equal(pump.size, 1)
    } finally {
      pump.stop()
    }
  })

  it('moves a record the consumer keeps refusing (onRecord throws, or crashes the cell past its timeout) to <stream>.dead with the error after 3 attempts alone, then skips it; the rest go on, each applied once', async () => {
    const kinds = [
      { refusal: 'throws', error: 'onRecord threw' },
      { refusal: 'crashes', error: 'cell shop/worker#2 crashed: exceeded its CPU time limit of 10000 ms' }
    ] as const
    for (const { refusal, error } of kinds) {
      const partition = await partitionCell()
      const dead = await partitionCell('orders.dead', 0, 1)
      const worker = new Consumer()
      ;(refusal === 'throws' ? worker.refuse : worker.crashOn).add(2)
      const logs: string[] = []
      const pump = setup({ 'shop/orders-p2#0': partition, 'shop/orders_dead-p0#0': dead }, { 'shop/worker#2': worker }, logs)
      try {
        for (let i = 0; i < 6; i++) partition.append(i, `k${i}`)
        pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
        await waitFor(() => worker.applied.length === 5, { what: `the other records applied (${refusal})` }).catch(err => { throw new Error(`${(err as Error).message}: ${logs.join('\n')}`) })
        assert.deepEqual(worker.applied, [0, 1, 3, 4, 5])
        await waitFor(() => (partition.info() as PartitionInfo).groups.worker.lag === 0, { what: 'every record acknowledged' })
        const letters = (dead.read('medic', 10) as { records: Array<[number, string | null, number, DeadLetter]> }).records
        assert.equal(letters.length, 1, JSON.stringify(letters))
        const [offset, key, , letter] = letters[0]
        assert.equal(offset, 0)
        assert.equal(key, 'k2')
        assert.deepEqual({ ...letter, time: 0 }, { stream: 'orders', partition: 2, offset: 2, key: 'k2', time: 0, group: 'worker', consumer: 'shop/worker#2', attempts: 3, error, record: 2 })
        assert.ok(logs.some(l => /refused record 2 3 times: moved to orders\.dead offset 0/.test(l)), logs.join('\n'))
        // the batch holding it, then its records alone up to the culprit, which goes alone 3
        // times (not in a batch again): 4 crashes, under the 5 in a minute that mark a cell failed
        assert.deepEqual(worker.sizes, [4, 1, 1, 1, 1, 1, 1, 2], `${refusal}: ${worker.sizes.join(' ')}`)
        if (refusal === 'crashes') assert.equal(worker.crashes, 4)
      } finally {
        pump.stop()
      }
    }
  })

  it('does not skip a refused record while its dead-letter stream cannot take it', async () => {
    const partition = await partitionCell()
    const dead = await partitionCell('orders.dead', 0, 1)
    const worker = new Consumer()
    worker.refuse.add(1)
    const partitions: Partitions = { 'shop/orders-p2#0': partition, 'shop/orders_dead-p0#0': undefined }
    const logs: string[] = []
    const pump = setup(partitions, { 'shop/worker#2': worker }, logs)
    try {
      for (let i = 0; i < 3; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => logs.filter(l => /cannot reach shop\/orders_dead-p0:/.test(l)).length >= 2, { what: 'dead-letter appends that fail' })
      assert.deepEqual(worker.applied, [0])
      assert.equal((partition.info() as PartitionInfo).groups.worker.acked, 0)
      partitions['shop/orders_dead-p0#0'] = dead
      await waitFor(() => worker.applied.length === 2, { what: 'the record after it applied' })
      assert.deepEqual(worker.applied, [0, 2])
      // once: the failed appends left nothing behind
      assert.equal((dead.info() as PartitionInfo).next, 1)
    } finally {
      pump.stop()
    }
  })

  it('dead-letters a refused record too large to go with its error as its place and error, without the record', async () => {
    const partition = await partitionCell()
    const dead = await partitionCell('orders.dead', 0, 1)
    const worker = new Consumer()
    // just within the partitions' record size limit (a quarter of maxBytes) alone, over it with the error
    const big = 'x'.repeat(249_900)
    worker.refuse.add(big)
    const pump = setup({ 'shop/orders-p2#0': partition, 'shop/orders_dead-p0#0': dead }, { 'shop/worker#2': worker })
    try {
      partition.append(big, 'k')
      partition.append('after', 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.applied.length === 1, { what: 'the record after it applied' })
      const letter = (dead.read('medic', 10) as { records: Array<[number, string | null, number, DeadLetter]> }).records[0][3]
      assert.equal(letter.offset, 0)
      assert.equal(letter.record, null)
      assert.match(letter.dropped ?? '', /too large/)
    } finally {
      pump.stop()
    }
  })

  it('only skips a refused record, with a log line, in an app published before dead-letter streams existed', async () => {
    const partition = await partitionCell()
    const worker = new Consumer()
    worker.refuse.add(2)
    const logs: string[] = []
    const pump = setup(partition, { 'shop/worker#2': worker }, logs, false)
    try {
      for (let i = 0; i < 6; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.applied.length === 5, { what: 'the other records applied' })
      assert.deepEqual(worker.applied, [0, 1, 3, 4, 5])
      assert.ok(logs.some(l => /refused record 2 3 times: skipped/.test(l)), logs.join('\n'))
    } finally {
      pump.stop()
    }
  })

  it('only skips a record of a dead-letter stream that its consumer keeps refusing', async () => {
    const dead = await partitionCell('orders.dead', 0, 1)
    const worker = new Consumer()
    worker.refuse.add('b')
    const logs: string[] = []
    const pump = setup({ 'shop/orders_dead-p0#0': dead }, { 'shop/worker#0': worker }, logs)
    try {
      for (const r of ['a', 'b', 'c']) dead.append(r, null)
      pump.onSnapshot('shop/orders_dead-p0#0', '{"stemStream":"orders.dead"}')
      await waitFor(() => worker.applied.length === 2, { what: 'the other records applied' })
      assert.deepEqual(worker.applied, ['a', 'c'])
      assert.ok(logs.some(l => /orders\.dead\/0: shop\/worker#0 refused record 1 3 times: skipped/.test(l)), logs.join('\n'))
      assert.equal((dead.info() as PartitionInfo).next, 3)
    } finally {
      pump.stop()
    }
  })

  it('appends a refused record to <stream>.dead once, though the skip after the append was lost and the record refused again', async () => {
    const partition = await partitionCell()
    const dead = await partitionCell('orders.dead', 0, 1)
    // the ack that skips the dead-lettered record is lost once (the partition failed over before answering)
    let lost = false
    const flaky = new Proxy(partition, {
      get: (target, name) => name === 'ack' ? (...args: unknown[]) => {
        if (!lost && args[1] === 2) { lost = true; throw new Error('the partition failed over') }
        return target.ack(...args)
      } : target[name as string]
    })
    const worker = new Consumer()
    worker.refuse.add(2)
    const logs: string[] = []
    const pump = setup({ 'shop/orders-p2#0': flaky, 'shop/orders_dead-p0#0': dead }, { 'shop/worker#2': worker }, logs)
    try {
      for (let i = 0; i < 6; i++) partition.append(i, `k${i}`)
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.applied.length === 5, { what: 'the other records applied' }).catch(err => { throw new Error(`${(err as Error).message}: ${logs.join('\n')}`) })
      assert.ok(lost, 'the skip was lost once')
      // refused 3 times, dead-lettered, skip lost; refused 3 times again, dead-lettered again: one copy
      assert.equal(logs.filter(l => /refused record 2 3 times: moved to orders\.dead offset 0/.test(l)).length, 2, logs.join('\n'))
      assert.equal((dead.info() as PartitionInfo).next, 1, 'one copy in orders.dead')
      assert.deepEqual(worker.applied, [0, 1, 3, 4, 5])
    } finally {
      pump.stop()
    }
  })

  it('moves a partition to another replica without doubling an effect: what the old one applied but did not acknowledge is acknowledged first', async () => {
    const partition = await partitionCell('orders', 1, 4)
    let workers = 1
    // the ack of the first batch is lost; meanwhile the worker cell grows to 2 replicas, and partition 1 goes to worker#1
    let lost = false
    const flaky = new Proxy(partition, {
      get: (target, name) => name === 'ack' ? (...args: unknown[]) => {
        if (!lost) { lost = true; workers = 2; throw new Error('the answer was lost') }
        return target.ack(...args)
      } : target[name as string]
    })
    const [w0, w1] = [new Consumer(), new Consumer()]
    const logs: string[] = []
    const pump = setup({ 'shop/orders-p1#0': flaky }, { 'shop/worker#0': w0, 'shop/worker#1': w1 }, logs, true, () => workers)
    try {
      for (let i = 0; i < 10; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p1#0', '{"stemStream":"orders"}')
      await waitFor(() => (partition.info() as PartitionInfo).groups.worker.lag === 0, { what: 'every record acknowledged' }).catch(err => { throw new Error(`${(err as Error).message}: ${logs.join('\n')}`) })
      assert.deepEqual(w0.applied, [0, 1, 2, 3])
      assert.deepEqual(w1.applied, [4, 5, 6, 7, 8, 9])
      assert.equal((partition.info() as PartitionInfo).groups.worker.holder, 'shop/worker#1')
      assert.ok(logs.some(l => /group worker moves from shop\/worker#0 to shop\/worker#1/.test(l)), logs.join('\n'))

      // shrunk back to 1: worker#1 went away with its state; its partition goes to worker#0, which is not asked to wait for it
      w1.down = true
      workers = 1
      for (let i = 10; i < 14; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p1#0', '{"stemStream":"orders"}')
      await waitFor(() => w0.applied.length === 8, { what: 'the new records at worker#0' })
      assert.deepEqual(w0.applied, [0, 1, 2, 3, 10, 11, 12, 13])
    } finally {
      pump.stop()
    }
  })

  it('delivers as before from a partition published before holders existed (its read names none, it has no hold)', async () => {
    const partition = await partitionCell()
    const older = new Proxy(partition, {
      get: (target, name) => name === 'hold' ? undefined : name === 'read' ? (...args: unknown[]) => { const { gen, records } = target.read(...args) as { gen: number, records: unknown[] }; return { gen, records } } : target[name as string]
    })
    const worker = new Consumer()
    const pump = setup({ 'shop/orders-p2#0': older }, { 'shop/worker#2': worker })
    try {
      for (let i = 0; i < 5; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.applied.length === 5, { what: 'every record applied' })
    } finally {
      pump.stop()
    }
  })

  it('sizes a batch to about deliveryMs of its consumer\'s onRecord: the first is small, the records of one that crashed the consumer past its timeout go again one by one, whose time sizes the next', async () => {
    const partition = await partitionCell()
    const worker = new Consumer()
    // onRecord takes 100 ms a record; a call over 300 ms times out, as a cell's does
    worker.msPerRecord = 100
    worker.timeoutMs = 300
    const pump = setup(partition, { 'shop/worker#2': worker }, [], true, () => 3, { batch: 16, deliveryMs: 250 })
    try {
      for (let i = 0; i < 20; i++) partition.append(i, 'k')
      pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
      await waitFor(() => worker.applied.length === 20, { what: 'every record applied' })
      assert.deepEqual(worker.applied, Array.from({ length: 20 }, (_, i) => i))
      // the first batch (8) outlasted the timeout: its records go alone (any could be the
      // culprit); alone, each took 100 ms: 2 a delivery from then on
      assert.deepEqual(worker.sizes, [8, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    } finally {
      pump.stop()
    }
  })

  it('keeps batches whole for a consumer whose onRecord is quick, and for one (an older Stem) that does not say how long it took', async () => {
    for (const answersMs of [true, false]) {
      const partition = await partitionCell()
      const worker = new Consumer()
      const pump = setup(partition, {
        'shop/worker#2': Object.assign(worker, {
          deliver (gen: number, records: Array<[number, string | null, number, unknown]>) {
            const answer = Consumer.prototype.deliver.call(worker, gen, records)
            return answersMs ? answer : answer.applied
          }
        })
      }, [], true, () => 3, { batch: 16, deliveryMs: 250 })
      try {
        for (let i = 0; i < 40; i++) partition.append(i, 'k')
        pump.onSnapshot('shop/orders-p2#0', '{"stemStream":"orders"}')
        await waitFor(() => worker.applied.length === 40, { what: 'every record applied' })
        // the first delivery is small, until the consumer's time is known
        assert.deepEqual(worker.sizes, [8, 16, 16])
      } finally {
        pump.stop()
      }
    }
  })
})
