// A remote ask whose new state has not reached a clone yet fails with "not safe yet"; the
// receiver's dedupe window must not record that failure as the ask's answer: a retry with
// the same message id waits for the gate again and gets the recorded result (the stream
// process test caught every retry of an emit answered with the first failure for 120 s).
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { newMessageId } from '../../src/messaging/sdk.js'
import { COUNTER, createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { connectAll, createTestNode } from './helpers.js'
import type { TestNode } from './helpers.js'

describe('messaging: a retry of an ask whose state was not safe yet', function () {
  let b: Bundler
  let alice: TestNode
  let bob: TestNode
  /** bob's reply gate fails while this is set (its clone is away) */
  let cloneAway = true

  before(async () => {
    b = await createBundler()
    const dirA = createStaticDirectory()
    const dirB = createStaticDirectory()
    alice = await createTestNode(dirA)
    bob = await createTestNode(dirB, { runtime: { replyGate: async () => { if (cloneAway) throw new Error('no clone took its state') } } })
    await connectAll([alice, bob])
    await bob.runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    dirA.set('shop/counter#0', bob.id)
    dirB.set('shop/counter#0', bob.id)
  })
  after(async () => {
    await Promise.all([alice, bob].map(async n => await n?.stop()))
    b.dir.remove()
  })

  it('is not answered with the first failure: once the state is safe it gets the recorded result, applied once', async () => {
    const messageId = newMessageId()
    await assert.rejects(alice.messaging.ask('shop/counter#0', 'increment', [5], { messageId }), /not safe yet: no clone took its state/)
    await assert.rejects(alice.messaging.ask('shop/counter#0', 'increment', [5], { messageId }), /not safe yet/, 'still not safe: the gate is asked again')
    cloneAway = false
    assert.equal(await alice.messaging.ask('shop/counter#0', 'increment', [5], { messageId }), 5)
    assert.equal(await alice.messaging.ask('shop/counter#0', 'get', []), 5, 'applied once')
  })
})
