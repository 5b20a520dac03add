import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import type { StaticDirectory } from '../../src/messaging/directory.js'
import { MessagingError } from '../../src/messaging/errors.js'
import { connect, newMessageId } from '../../src/messaging/sdk.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { connectAll, createTestNode } from './helpers.js'
import type { TestNode } from './helpers.js'

interface Counter {
  count: number
  increment: (by?: number) => number
  get: () => number
  both: (other: string) => Promise<number>
}

const SLOW = `
export default class Slow {
  n = 0
  work (ms, pad) { const end = Date.now() + ms; while (Date.now() < end) {} this.n++; return this.n }
  get () { return this.n }
}
`

function code (err: unknown): string | undefined {
  return err instanceof MessagingError ? err.code : undefined
}

describe('messaging: asks and tells between cells on different nodes', function () {
  let b: Bundler
  let dirA: StaticDirectory
  let dirB: StaticDirectory
  let dirC: StaticDirectory
  let alice: TestNode
  let bob: TestNode
  let carol: TestNode

  before(async () => {
    b = await createBundler()
    dirA = createStaticDirectory()
    dirB = createStaticDirectory()
    dirC = createStaticDirectory()
    alice = await createTestNode(dirA, { messaging: { maxQueuedBytes: 64 * 1024 } })
    bob = await createTestNode(dirB, { messaging: { maxInflightPerStream: 4 } })
    carol = await createTestNode(dirC, {})
    await connectAll([alice, bob, carol])
    const counter = await b.bundle('shop/counter', COUNTER)
    await bob.runtime.transform('shop/counter#0', counter, { owner: b.owner.publicKey })
    await alice.runtime.transform('shop/front#0', await b.bundle('shop/front', COUNTER), { owner: b.owner.publicKey })
    for (const dir of [dirA, dirB, dirC]) {
      dir.set('shop/counter#0', bob.id)
      dir.set('shop/front#0', alice.id)
    }
  })
  after(async () => {
    await Promise.all([alice, bob, carol].map(async n => await n?.stop()))
    b.dir.remove()
  })

  it('asks and tells a cell on another node, and a cell asks a cell on another node', async () => {
    assert.equal(await alice.messaging.ask('shop/counter#0', 'increment', [5]), 5)
    alice.messaging.tell('shop/counter#0', 'increment', [2])
    await waitFor(async () => await alice.messaging.ask('shop/counter#0', 'get') === 7, { what: 'the tell to arrive' })
    // any replica: app/cell resolves through the directory's replicas
    assert.equal(await carol.messaging.ask('shop/counter', 'get'), 7)
    // stem.ask from a cell on Alice's node reaches the cell on Bob's node through the router
    assert.equal(await alice.messaging.ask('shop/front#0', 'both', ['shop/counter#0']), 7)
    assert.equal(await alice.runtime.ask('shop/front#0', 'both', ['shop/counter#0']), 7)
    // local cells are asked locally
    assert.equal(await alice.messaging.ask('shop/front#0', 'increment', [1]), 1)
  })

  it('counts messages by direction and kind, and times asks while someone listens', async () => {
    const sent = alice.messaging.counts().messages
    const received = bob.messaging.counts().messages
    const delivered = bob.runtime.cell('shop/counter#0')?.messages ?? 0
    const done: Array<{ scope: string, ok: boolean, seconds: number }> = []
    const listener = (evt: CustomEvent<{ scope: string, ok: boolean, seconds: number }>): void => { done.push(evt.detail) }
    alice.messaging.addEventListener('ask:done', listener)
    try {
      await alice.messaging.ask('shop/counter#0', 'get')
      alice.messaging.tell('shop/counter#0', 'increment', [0])
      await alice.messaging.ask('shop/front#0', 'get')
      await assert.rejects(alice.messaging.ask('shop/counter#0', 'nope'))
    } finally {
      alice.messaging.removeEventListener('ask:done', listener)
    }
    await alice.messaging.ask('shop/counter#0', 'get')
    assert.deepEqual(done.map(d => [d.scope, d.ok]), [['remote', true], ['local', true], ['remote', false]], 'asks timed only while listened to')
    assert.ok(done.every(d => d.seconds >= 0 && d.seconds < 60))
    const after = alice.messaging.counts().messages
    assert.equal(after.out.ask - sent.out.ask, 3, 'the local ask never left the node')
    assert.equal(after.out.tell - sent.out.tell, 1)
    assert.equal(after.in.reply - sent.in.reply, 3)
    await waitFor(() => bob.messaging.counts().messages.in.tell - received.in.tell === 1, { what: 'the tell to arrive' })
    assert.equal(bob.messaging.counts().messages.in.ask - received.in.ask, 3)
    assert.equal(bob.messaging.counts().messages.out.reply - received.out.reply, 3)
    // the runtime counts what reached the cell: 3 asks (one of them to an unknown method) and the tell
    await waitFor(() => (bob.runtime.cell('shop/counter#0')?.messages ?? 0) - delivered === 4, { what: 'the cell to count 4 delivered messages' })
  })

  it('batches many messages into few signed frames', async () => {
    const before = alice.messaging.counts().framesOut
    for (let i = 0; i < 500; i++) alice.messaging.tell('shop/counter#0', 'increment', [0])
    const last = await alice.messaging.ask('shop/counter#0', 'get')
    assert.equal(typeof last, 'number')
    const frames = alice.messaging.counts().framesOut - before
    assert.ok(frames >= 1 && frames < 50, `501 messages took ${frames} frames`)
  })

  it('the typed SDK turns method calls into asks', async () => {
    const counter = connect(alice.messaging).cell<Counter>('shop/counter#0')
    const before = await counter.get()
    assert.equal(await counter.increment(3), before + 3)
    assert.equal(counter.$address, 'shop/counter#0')
    await assert.rejects(connect(alice.messaging).call('shop/counter#0', 'nope'), /unknown method "nope"/)
    assert.throws(() => connect(alice.messaging).cell('not an address'), /invalid cell address/)
  })

  it('a cell error, an unknown address and a missing cell are clear errors', async () => {
    await assert.rejects(alice.messaging.ask('shop/counter#0', 'nope'), (err: Error) => code(err) === 'remote' && /unknown method "nope"/.test(err.message))
    await assert.rejects(alice.messaging.ask('shop/ghost#0', 'get'), (err: Error) => code(err) === 'unknown-address' && /unknown cell address shop\/ghost#0/.test(err.message))
    await assert.rejects(alice.messaging.ask('bad address', 'get'), /invalid cell address/)
    // the directory names Bob, Bob has no such cell and names no one else
    dirA.set('shop/missing#0', bob.id)
    await assert.rejects(alice.messaging.ask('shop/missing#0', 'get'), (err: Error) => code(err) === 'not-here' && /not on node/.test(err.message))
  })

  it('re-routes an ask and a tell to a cell that moved, once', async () => {
    const counter = await b.bundle('shop/mover', COUNTER)
    await bob.runtime.transform('shop/mover#0', counter, { owner: b.owner.publicKey })
    for (const dir of [dirA, dirB, dirC]) dir.set('shop/mover#0', bob.id)
    assert.equal(await alice.messaging.ask('shop/mover#0', 'increment', [10]), 10)
    // move: Bob's cell goes to Carol with its state; Alice's directory is stale, Bob's and Carol's are not
    const snapshot = await bob.runtime.snapshot('shop/mover#0')
    await carol.runtime.transform('shop/mover#0', counter, { owner: b.owner.publicKey, state: snapshot.state, version: snapshot.version })
    await bob.runtime.revert('shop/mover#0')
    dirB.set('shop/mover#0', carol.id)
    dirC.set('shop/mover#0', carol.id)
    const rerouted = alice.messaging.counts().rerouted
    assert.equal(await alice.messaging.ask('shop/mover#0', 'increment', [1]), 11)
    assert.equal(alice.messaging.counts().rerouted, rerouted + 1)
    // a tell to the old node is forwarded once
    alice.messaging.tell('shop/mover#0', 'increment', [1])
    await waitFor(async () => await carol.messaging.ask('shop/mover#0', 'get') === 12, { what: 'the forwarded tell' })
    // a second "not here" is an error, not a loop
    dirC.set('shop/mover#0', bob.id)
    await carol.runtime.revert('shop/mover#0')
    await assert.rejects(alice.messaging.ask('shop/mover#0', 'get'), (err: Error) => code(err) === 'not-here' && /after one re-route/.test(err.message))
  })

  it('a retried ask with the same message id runs once and gets the recorded result', async () => {
    await bob.runtime.transform('shop/once#0', await b.bundle('shop/once', COUNTER), { owner: b.owner.publicKey })
    dirA.set('shop/once#0', bob.id)
    const messageId = newMessageId()
    const hits = bob.messaging.counts().dedupeHits
    assert.equal(await alice.messaging.ask('shop/once#0', 'increment', [1], { messageId }), 1)
    assert.equal(await alice.messaging.ask('shop/once#0', 'increment', [1], { messageId }), 1)
    // concurrent retries while the first is pending share its answer
    const id2 = newMessageId()
    const [x, y] = await Promise.all([
      alice.messaging.ask('shop/once#0', 'increment', [1], { messageId: id2 }),
      alice.messaging.ask('shop/once#0', 'increment', [1], { messageId: id2 })
    ])
    assert.deepEqual([x, y], [2, 2])
    // through the SDK: a pinned id
    const once = connect(alice.messaging).cell<Counter>('shop/once#0').$with({ messageId: newMessageId() })
    assert.equal(await once.increment(5), 7)
    assert.equal(await once.increment(5), 7)
    assert.equal(await alice.messaging.ask('shop/once#0', 'get'), 7)
    assert.equal(bob.messaging.counts().dedupeHits, hits + 2)
    await assert.rejects(alice.messaging.ask('shop/once#0', 'get', [], { messageId: 'xyz' }), /invalid messageId/)
  })

  it('an ask past its deadline fails with timeout; an aborted one with aborted', async () => {
    await bob.runtime.transform('shop/lazy#0', await b.bundle('shop/lazy', SLOW), { owner: b.owner.publicKey })
    dirA.set('shop/lazy#0', bob.id)
    await assert.rejects(alice.messaging.ask('shop/lazy#0', 'work', [300, ''], { deadline: Date.now() + 50 }), (err: Error) => code(err) === 'timeout' && /may or may not have run/.test(err.message))
    // asked on its own node: the same code and hint
    await assert.rejects(bob.messaging.ask('shop/lazy#0', 'work', [300, ''], { deadline: Date.now() + 50 }), (err: Error) => code(err) === 'timeout' && /may or may not have run/.test(err.message))
    const controller = new AbortController()
    const asked = alice.messaging.ask('shop/lazy#0', 'work', [300, ''], { signal: controller.signal })
    controller.abort()
    await assert.rejects(asked, (err: Error) => code(err) === 'aborted')
    // at most once each: whether they ran is not known to the caller, but never twice
    const ran = await waitFor(async () => { const n = await alice.messaging.ask('shop/lazy#0', 'get') as number; return n >= 1 ? n : undefined }, { what: 'the first to run' })
    assert.ok(ran <= 3)
  })

  it('an ask and a transform waiting on a dial to a node judged down fail at once as unreachable, not at the dial timeout', async () => {
    // a stalled node: its kernel accepts the connection, nothing ever answers the handshake
    const sockets: Socket[] = []
    const blackHole = createServer(socket => { sockets.push(socket) })
    await new Promise<void>(resolve => { blackHole.listen(0, '127.0.0.1', resolve) })
    try {
      const stalled = peerIdFromPrivateKey(await createEd25519Key())
      await alice.libp2p.peerStore.merge(stalled, { multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${(blackHole.address() as AddressInfo).port}`)] })
      dirA.set('shop/stalled#0', stalled.toString())
      const asked = alice.messaging.ask('shop/stalled#0', 'get', [], { deadline: Date.now() + 60_000 })
      const transformed = alice.messaging.transformRemote(stalled.toString(), { address: 'shop/stalled#1', bundle: 'a'.repeat(64), owner: new Uint8Array(32) }, { deadline: Date.now() + 60_000 })
      await waitFor(() => sockets.length > 0, { what: 'the dial to reach the stalled node' })
      alice.messaging.peerJudgedDown(stalled.toString())
      for (const waiting of [asked, transformed]) await assert.rejects(waiting, (err: Error) => code(err) === 'unreachable' && /judged down/.test(err.message))
      // judged down, it is not dialled again
      await assert.rejects(alice.messaging.transformRemote(stalled.toString(), { address: 'shop/stalled#1', bundle: 'a'.repeat(64), owner: new Uint8Array(32) }), /judged down/)
    } finally {
      for (const socket of sockets) socket.destroy()
      blackHole.close()
    }
  })

  it('a slow receiver slows the sender: bounded queue, backpressure errors, nothing lost', async function () {
    this.timeout(120_000)
    await bob.runtime.transform('shop/slow#0', await b.bundle('shop/slow', SLOW, { mailbox: 8 }), { owner: b.owner.publicKey })
    dirA.set('shop/slow#0', bob.id)
    const pad = 'x'.repeat(1000)
    const total = 800
    let refused = 0
    let maxQueued = 0
    for (let sent = 0; sent < total;) {
      try {
        alice.messaging.tell('shop/slow#0', 'work', [2, pad])
        sent++
      } catch (err) {
        assert.equal(code(err), 'backpressure', (err as Error).message)
        assert.match((err as Error).message, /outbound queue to .* is full/)
        refused++
        await alice.messaging.whenWritable('shop/slow#0', AbortSignal.timeout(60_000))
      }
      maxQueued = Math.max(maxQueued, alice.messaging.queuedBytes(bob.id))
    }
    assert.ok(refused > 0, 'the sender never felt backpressure')
    assert.ok(maxQueued <= 64 * 1024, `queue grew to ${maxQueued} bytes`)
    await waitFor(async () => await alice.messaging.ask('shop/slow#0', 'get') === total, { timeout: 90_000, what: `all ${total} tells to run` })
    assert.ok(alice.messaging.counts().backpressure >= refused)
  })
})
