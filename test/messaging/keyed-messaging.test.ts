// Keyed addresses through the mesh: `app/cell/<key>` is sent to the node of the key's
// shard as `app/cell#s/<key>`, and a node refuses a keyed ask that names a shard other
// than the key's (a sender with a stale or forged view would make a second activation).
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { shardOfKey } from '../../src/cells/keys.js'
import { createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { connectAll, createTestNode } from './helpers.js'
import type { TestNode } from './helpers.js'

const CART = 'export default class Cart { n = 0; add () { return { key: stem.key, shard: stem.self, n: ++this.n } } }'

describe('messaging: keyed cells', function () {
  let b: Bundler
  let alice: TestNode
  let bob: TestNode
  let carol: TestNode
  // a key of each of the 2 shards
  const keys = Array.from({ length: 50 }, (_, i) => `user/${i}`)
  const inShard = (s: number): string => keys.find(k => shardOfKey(k, 2) === s) as string

  before(async () => {
    b = await createBundler()
    const dirA = createStaticDirectory()
    const dirB = createStaticDirectory()
    // carol's view is stale: one shard
    const dirC = createStaticDirectory()
    alice = await createTestNode(dirA, {})
    bob = await createTestNode(dirB, {})
    carol = await createTestNode(dirC, {})
    await connectAll([alice, bob, carol])
    for (const dir of [dirA, dirB]) { dir.set('shop/cart#0', bob.id); dir.set('shop/cart#1', alice.id) }
    dirC.set('shop/cart#0', bob.id)
    const cart = await b.bundle('shop/cart', CART, {}, undefined, { idle: 60_000 })
    await bob.runtime.transform('shop/cart#0', cart, { owner: b.owner.publicKey })
    await alice.runtime.transform('shop/cart#1', cart, { owner: b.owner.publicKey })
  })
  after(async () => {
    await Promise.all([alice, bob, carol].map(async n => await n?.stop()))
    b.dir.remove()
  })

  it('sends app/cell/<key> to the node of its shard', async () => {
    for (const s of [0, 1]) {
      const key = inShard(s)
      const address = `shop/cart/${key.replace('/', '%2F')}`
      assert.deepEqual(await alice.messaging.ask(address, 'add'), { key, shard: `shop/cart#${s}`, n: 1 })
      assert.deepEqual(await bob.messaging.ask(address, 'add'), { key, shard: `shop/cart#${s}`, n: 2 })
    }
  })

  it('refuses a keyed ask naming the wrong shard, at the sender and at the receiver, and activates nothing', async () => {
    const key = inShard(1).replace('/', '%2F')
    await assert.rejects(alice.messaging.ask(`shop/cart#0/${key}`, 'add'), /belongs to shard 1, not 0/)
    // carol believes in one shard: bob, holding shard 0, refuses the key of shard 1
    await assert.rejects(carol.messaging.ask(`shop/cart/${key}`, 'add'), /belongs to shard 1, not 0/)
    assert.ok(!(bob.runtime.cell('shop/cart#0')?.keys?.active ?? []).includes(inShard(1)))
  })
})
