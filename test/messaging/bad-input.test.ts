import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { encodeFrame } from '../../src/messaging/framing.js'
import { createFrameSigner, signFrame } from '../../src/wire/frame.js'
import { CellBatch, CellEnvelope, ReplyStatus } from '../../src/wire/proto/cell.js'
import { Frame } from '../../src/wire/proto/frame.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { connectAll, createLibp2pNode, createTestNode, MESH } from './helpers.js'
import type { TestNode, TestLibp2p } from './helpers.js'

const CELL = `/stem/${MESH}/cell/1`

function batch (...envelopes: CellEnvelope[]): Uint8Array {
  return CellBatch.encode({ messages: envelopes.map(e => CellEnvelope.encode(e)) })
}

function ask (to: string, method: string, args: unknown[] = []): CellEnvelope {
  return { ask: { id: new Uint8Array(16).map(() => Math.floor(Math.random() * 256)), to, method, args: JSON.stringify(args), deadline: BigInt(Date.now() + 20_000), from: '' } }
}

/** Replies Mallory gets on a stream, decoded without checks (she trusts Bob). */
function collectReplies (stream: Stream): Array<{ status: ReplyStatus, text: string }> {
  const replies: Array<{ status: ReplyStatus, text: string }> = []
  let buffer = Buffer.alloc(0)
  stream.addEventListener('message', e => {
    buffer = Buffer.concat([buffer, e.data.subarray()])
    while (buffer.byteLength >= 4 && buffer.byteLength >= 4 + buffer.readUInt32BE(0)) {
      const frame = Frame.decode(buffer.subarray(4, 4 + buffer.readUInt32BE(0)))
      buffer = buffer.subarray(4 + buffer.readUInt32BE(0))
      for (const m of CellBatch.decode(frame.cell as Uint8Array).messages) {
        const reply = CellEnvelope.decode(m).reply
        if (reply != null) replies.push({ status: reply.status, text: reply.text })
      }
    }
  })
  return replies
}

describe('messaging: bad input on the cell protocol', function () {
  let b: Bundler
  let alice: TestNode
  let bob: TestNode
  let mallory: TestLibp2p
  let malloryKey: PrivateKey

  before(async () => {
    b = await createBundler()
    const directory = createStaticDirectory()
    alice = await createTestNode(directory)
    bob = await createTestNode(directory, { messaging: { maxBadFrames: 8, maxStreamsPerPeer: 4 } })
    await connectAll([alice, bob])
    await bob.runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    directory.set('shop/counter#0', bob.id)
    malloryKey = await createEd25519Key()
    mallory = await createLibp2pNode(malloryKey)
  })
  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop(), mallory?.stop()])
    b.dir.remove()
  })

  /** a cell stream on a fresh connection */
  const dialBob = async (): Promise<Stream> => {
    await mallory.hangUp(bob.libp2p.peerId)
    // Bob may still be resetting the connections of a previous test's flood: dial again until one holds
    await waitFor(async () => { await mallory.dial(bob.libp2p.getMultiaddrs()[0]); return true }, { what: 'a fresh connection to Bob' })
    return await mallory.dialProtocol(bob.libp2p.peerId, CELL)
  }
  const rejected = (reason: string): number => bob.messaging.counts().rejected[reason] ?? 0
  const aliceStillServed = async (): Promise<void> => {
    const before = await alice.messaging.ask('shop/counter#0', 'get') as number
    assert.equal(await alice.messaging.ask('shop/counter#0', 'increment', [1]), before + 1)
  }

  it('answers a well-formed batch from any mesh peer', async () => {
    const stream = await dialBob()
    const replies = collectReplies(stream)
    const signer = createFrameSigner(malloryKey)
    stream.send(encodeFrame(signer.sign('cell', batch(ask('shop/counter#0', 'increment', [2]), ask('shop/nothing#0', 'get'), ask('shop/counter#0', 'nope')))))
    await waitFor(() => replies.length === 3, { what: 'three replies' })
    // answers come as they are ready
    const by = (status: ReplyStatus): Array<{ status: ReplyStatus, text: string }> => replies.filter(r => r.status === status)
    assert.equal(by(ReplyStatus.OK).length, 1)
    assert.deepEqual(by(ReplyStatus.NOT_HERE), [{ status: ReplyStatus.NOT_HERE, text: `no cell shop/nothing#0 on node ${bob.id}` }])
    assert.match(by(ReplyStatus.ERROR)[0].text, /unknown method "nope"/)
    await stream.close()
  })

  it('rejects frames signed by another peer, replays, stale frames and garbage, then closes the connection', async () => {
    const stream = await dialBob()
    const replies = collectReplies(stream)
    const before = { wrong: rejected('wrong-sender'), replayed: rejected('replayed'), stale: rejected('stale'), malformed: rejected('malformed'), batch: rejected('malformed-batch') }
    const closed: string[] = []
    bob.messaging.addEventListener('peer:closed', e => { closed.push(e.detail.peer) })
    // signed by Alice's key (stolen frame shape), sent by Mallory
    const forged = createFrameSigner(alice.key).sign('cell', batch(ask('shop/counter#0', 'increment', [100])))
    stream.send(encodeFrame(forged))
    // a valid frame, then the same bytes again
    const signer = createFrameSigner(malloryKey)
    const once = signer.sign('cell', batch(ask('shop/counter#0', 'get')))
    stream.send(encodeFrame(once))
    stream.send(encodeFrame(once))
    // an old timestamp
    stream.send(encodeFrame(signFrame(malloryKey, { seq: 1n, timestamp: BigInt(Date.now() - 3_600_000), kind: 'cell', payload: batch(ask('shop/counter#0', 'get')) })))
    // a signed frame whose payload is not a batch
    stream.send(encodeFrame(signer.sign('cell', new Uint8Array([0xff, 0xff, 0xff]))))
    await waitFor(() => rejected('wrong-sender') > before.wrong && rejected('replayed') > before.replayed && rejected('stale') > before.stale && rejected('malformed-batch') > before.batch, { what: 'rejections counted' })
    await waitFor(() => replies.length === 1, { what: 'the one valid ask answered' })
    await aliceStillServed()
    // garbage until the limit of bad frames closes the connection
    for (let i = 0; i < 8 && stream.status === 'open'; i++) stream.send(encodeFrame(new Uint8Array(50).fill(i)))
    await waitFor(() => closed.includes(mallory.peerId.toString()), { what: 'the connection to be closed' })
    assert.ok(rejected('malformed') > before.malformed)
    await waitFor(() => mallory.getConnections(bob.libp2p.peerId).length === 0, { what: 'Mallory disconnected' })
    await aliceStillServed()
    // the counter never saw the forged increment
    assert.ok((await alice.messaging.ask('shop/counter#0', 'get') as number) < 100)
  })

  it('closes the connection on an oversized frame', async () => {
    const stream = await dialBob()
    const closed = bob.messaging.counts().peersClosed
    const header = new Uint8Array(4)
    new DataView(header.buffer).setUint32(0, 0x7fffffff)
    stream.send(header)
    await waitFor(() => bob.messaging.counts().peersClosed > closed && rejected('oversized') > 0, { what: 'oversized frame counted' })
    await waitFor(() => mallory.getConnections(bob.libp2p.peerId).length === 0, { what: 'Mallory disconnected' })
    await aliceStillServed()
  })

  it('refuses a flood of streams and keeps serving others', async function () {
    this.timeout(120_000)
    const open = async (): Promise<Stream> => await mallory.dialProtocol(bob.libp2p.peerId, CELL, { negotiateFully: true, maxOutboundStreams: 2000, signal: AbortSignal.timeout(30_000) })
    await mallory.hangUp(bob.libp2p.peerId)
    await mallory.dial(bob.libp2p.getMultiaddrs()[0])
    const before = bob.messaging.counts()
    // one at a time: the first 4 are kept, the next are refused and counted, and after
    // 8 refusals Bob hangs up
    for (let i = 0; i < 12; i++) await open().catch(() => undefined)
    await waitFor(() => bob.messaging.counts().streamsRefused >= before.streamsRefused + 4 && bob.messaging.counts().peersClosed > before.peersClosed, { what: 'refused streams counted and the peer hung up on' })
    await aliceStillServed()
    // a thousand at once: libp2p's per-connection protocol limit resets what is over it
    const attempts = await Promise.allSettled(Array.from({ length: 1000 }, async () => {
      const stream = await open()
      stream.send(new Uint8Array(1))
      return stream
    }))
    const opened = attempts.filter(a => a.status === 'fulfilled' && a.value.status === 'open').length
    assert.ok(opened <= 8, `${opened} of 1000 streams open`)
    await aliceStillServed()
  })

  it('a tell or reply for a cell that does not exist is dropped and counted', async () => {
    const stream = await dialBob()
    const signer = createFrameSigner(malloryKey)
    const dropped = bob.messaging.counts().tellsDropped
    const unexpected = rejected('unexpected-reply')
    stream.send(encodeFrame(signer.sign('cell', batch(
      { tell: { to: 'shop/nothing#0', method: 'get', args: '[]', from: '', hops: 0 } },
      { reply: { id: new Uint8Array(16), status: ReplyStatus.OK, text: '1', hint: '', epoch: 0n } }
    ))))
    await waitFor(() => bob.messaging.counts().tellsDropped > dropped && rejected('unexpected-reply') > unexpected, { what: 'drops counted' })
    await aliceStillServed()
    await stream.close()
  })
})
