// Keyed cells in real isolates (a real cell host): a shard activates each key on demand
// with its saved fields (stem.key inside), passivates idle keys, rolls a failed message
// back for its key only, keeps every key's fields and reminders in the shard's state
// (restored elsewhere from it), and refuses keyed addresses to cells that are not keyed.
import { describe, it, before, after, beforeEach, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler } from './helpers.js'
import type { Bundler } from './helpers.js'

const CART = `
let activations = 0
export default class Cart {
  items = []
  #activation = ++activations
  add (sku) { this.items.push(sku); return { key: stem.key, items: this.items.length, activation: this.#activation } }
  get () { return { key: stem.key, items: this.items, activation: this.#activation } }
  fail (sku) { this.items.push(sku); throw new Error('no ' + sku) }
  async slow (sku) { await stem.ask('shop/other', 'get').catch(() => null); this.items.push(sku); return stem.key }
  expire (ms) { return stem.schedule(ms, 'clear') }
  clear () { this.items = []; stem.log('cleared ' + stem.key) }
  pending () { return stem.reminders().length }
}
`

describe('cells: keyed cells', function () {
  let b: Bundler
  let runtime: CellRuntime
  const logs: string[] = []

  before(async () => { b = await createBundler() })
  after(() => { b.dir.remove() })
  beforeEach(() => {
    logs.length = 0
    runtime = createCellRuntime({ heartbeatInterval: 200, log: (address, text) => { logs.push(`${address} ${text}`) } })
    runtime.start()
  })
  afterEach(async () => { await runtime.stop() })

  async function shard (idle = 60_000, state?: string): Promise<void> {
    await runtime.transform('shop/cart#0', await b.bundle('shop/cart', CART, {}, undefined, { idle }), { owner: b.owner.publicKey, state })
  }

  it('activates each key with its own fields and gives it stem.key', async () => {
    await shard()
    assert.deepEqual(await runtime.ask('shop/cart#0/alice', 'add', ['fig']), { key: 'alice', items: 1, activation: 1 })
    assert.deepEqual(await runtime.ask('shop/cart#0/bob', 'add', ['kiwi']), { key: 'bob', items: 1, activation: 2 })
    assert.deepEqual(await runtime.ask('shop/cart#0/alice', 'add', ['date']), { key: 'alice', items: 2, activation: 1 })
    // `a/b%2Fc%23%25` is the key 'b/c#%'
    assert.deepEqual(await runtime.ask('shop/cart#0/b%2Fc%23%25', 'get'), { key: 'b/c#%', items: [], activation: 3 })
    const info = runtime.cell('shop/cart#0')
    assert.deepEqual(info?.keys, { stored: 3, active: ['alice', 'b/c#%', 'bob'] })
  })

  it('passivates a key after idle and activates it again from its saved fields', async () => {
    await shard(1000)
    const first = await runtime.ask('shop/cart#0/alice', 'add', ['fig']) as { activation: number }
    // the isolate noted alice's use before it answered: idle for it once 1 s passed since the answer
    const answeredAt = Date.now()
    await waitFor(() => runtime.cell('shop/cart#0')?.keys?.active.length === 0 && Date.now() - answeredAt > 1000, { timeout: 10_000, what: 'alice idle' })
    // any message sweeps the idle activations; alice's next one activates her again
    await runtime.ask('shop/cart#0/bob', 'get')
    const again = await runtime.ask('shop/cart#0/alice', 'get') as { items: string[], activation: number }
    assert.deepEqual(again.items, ['fig'])
    assert.notEqual(again.activation, first.activation)
  })

  it('rolls a failed message back for its key only, and serves keys across an await', async () => {
    await shard()
    await runtime.ask('shop/cart#0/alice', 'add', ['fig'])
    await runtime.ask('shop/cart#0/bob', 'add', ['kiwi'])
    await assert.rejects(runtime.ask('shop/cart#0/alice', 'fail', ['plum']), /no plum/)
    assert.deepEqual((await runtime.ask('shop/cart#0/alice', 'get') as { items: string[] }).items, ['fig'])
    assert.deepEqual((await runtime.ask('shop/cart#0/bob', 'get') as { items: string[] }).items, ['kiwi'])
    const [slow, fast] = await Promise.all([runtime.ask('shop/cart#0/carol', 'slow', ['x']), runtime.ask('shop/cart#0/dave', 'add', ['y'])])
    assert.equal(slow, 'carol')
    assert.equal((fast as { key: string }).key, 'dave')
  })

  it('keeps every key in the shard state: another runtime restores them', async () => {
    await shard()
    await runtime.ask('shop/cart#0/alice', 'add', ['fig'])
    await runtime.ask('shop/cart#0/bob', 'add', ['kiwi'])
    const { state, version } = await runtime.snapshot('shop/cart#0')
    assert.deepEqual(JSON.parse(state), { keys: { alice: { items: ['fig'] }, bob: { items: ['kiwi'] } } })
    await runtime.stop()
    runtime = createCellRuntime({ heartbeatInterval: 200 })
    runtime.start()
    await runtime.transform('shop/cart#0', await b.bundle('shop/cart', CART, {}, undefined, { idle: 60_000 }), { owner: b.owner.publicKey, state, version })
    assert.deepEqual((await runtime.ask('shop/cart#0/bob', 'get') as { items: string[] }).items, ['kiwi'])
  })

  it('a reminder of a passivated key wakes it; stem.reminders() lists only its own key', async () => {
    await shard(1000)
    await runtime.ask('shop/cart#0/alice', 'add', ['fig'])
    await runtime.ask('shop/cart#0/alice', 'expire', [1500])
    assert.equal(await runtime.ask('shop/cart#0/alice', 'pending'), 1)
    assert.equal(await runtime.ask('shop/cart#0/bob', 'pending'), 0)
    await waitFor(() => logs.some(l => l.includes('cleared alice')), { timeout: 10_000, what: 'the reminder of alice' })
    assert.deepEqual((await runtime.ask('shop/cart#0/alice', 'get') as { items: string[] }).items, [])
    assert.equal(await runtime.ask('shop/cart#0/alice', 'pending'), 0)
  })

  it('refuses a keyed address to a cell that is not keyed, and an address without key to a keyed one', async () => {
    await shard()
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await assert.rejects(runtime.ask('shop/counter#0/alice', 'get'), /cell shop\/counter is not keyed/)
    await assert.rejects(runtime.ask('shop/cart#0', 'get'), /is a keyed cell: address one of its keys/)
    await assert.rejects(runtime.ask('shop/cart#0/a%zz', 'get'), /'%' must start an escape/)
    await assert.rejects(runtime.ask(`shop/cart#0/${'k'.repeat(257)}`, 'get'), /longer than 256 bytes/)
  })
})
