// The clone protocol's streams (clone-session.ts): a node's requests to a peer share one
// stream, answers are matched by id, and both ends refuse what is not a valid frame of the
// protocol with a one-line reason, ending the stream (the next request opens another).
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { createFrameSigner } from '../../src/wire/frame.js'
import type { FrameSigner } from '../../src/wire/frame.js'
import { encodeFrame, readFrames, writeFrame } from '../../src/messaging/framing.js'
import { CloneAnswer, CloneRequest } from '../../src/wire/proto/clone.js'
import { Frame } from '../../src/wire/proto/frame.js'
import { AppTable } from '../../src/topology/app-table.js'
import { createCloneService } from '../../src/topology/clones.js'
import type { CloneService } from '../../src/topology/clones.js'
import { SESSION_REQUESTS } from '../../src/topology/clone-session.js'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { waitFor } from '../support/wait.js'
import { MESH, connectAll, createTestNode, type TestNode } from '../messaging/helpers.js'

const answerOf = (id: bigint): CloneAnswer => ({ ok: true, error: '', version: 0n, copies: [], state: '', epoch: 0n, replies: '', id })
const inventory = (id: bigint): CloneRequest => ({ inventory: { app: 'shop', address: '', epoch: 0n, primary: '' }, id })

/** the clone service's wire, as a primary's push of a state reaches it (pushes share a stream; other requests open one each) */
interface Requester { request: (peer: string, request: Omit<CloneRequest, 'id'>, outer?: AbortSignal) => Promise<CloneAnswer> }
const pushTo = async (from: CloneService, peer: string, signal?: AbortSignal): Promise<CloneAnswer> =>
  await (from as unknown as Requester).request(peer, { state: { address: 'shop/counter#0', state: '{"count":1}', version: 1n, epoch: 1n, replies: '' } }, signal)

/** what a stand-in clone node does with each request it reads: its id, the stream, its signer */
type Behaviour = (id: bigint, stream: Stream, signer: FrameSigner) => void

describe('clone protocol streams', function () {
  this.timeout(60_000)
  let asker: TestNode
  let answerer: TestNode
  let fake: TestNode
  let askerClones: CloneService
  let answererClones: CloneService
  let fakeSigner: FrameSigner
  let behaviour: Behaviour
  /** requests the stand-in read, by stream */
  const seen = new Map<Stream, number>()

  before(async () => {
    asker = await createTestNode(createStaticDirectory())
    answerer = await createTestNode(createStaticDirectory())
    fake = await createTestNode(createStaticDirectory())
    await connectAll([asker, answerer, fake])
    const table = new AppTable()
    askerClones = createCloneService({ libp2p: asker.libp2p, runtime: asker.runtime, bundles: asker.bundles, signer: createFrameSigner(asker.key), table }, { mesh: MESH, timeout: 20_000 })
    answererClones = createCloneService({ libp2p: answerer.libp2p, runtime: answerer.runtime, bundles: answerer.bundles, signer: createFrameSigner(answerer.key), table }, { mesh: MESH })
    await askerClones.start()
    await answererClones.start()
    fakeSigner = createFrameSigner(fake.key)
    await fake.libp2p.handle(askerClones.protocol, stream => {
      readFrames(stream, 1 << 20, {
        onFrame: bytes => {
          seen.set(stream, (seen.get(stream) ?? 0) + 1)
          behaviour(CloneRequest.decode(Frame.decode(bytes).cell as Uint8Array).id, stream, fakeSigner)
        },
        onOversized: () => {},
        onClose: () => { stream.close().catch(() => {}) }
      })
    }, { maxInboundStreams: 128 })
  })

  after(async () => {
    await askerClones.stop()
    await answererClones.stop()
    await Promise.all([asker, answerer, fake].map(async n => { await n.stop() }))
  })

  const cloneStreams = (from: TestNode, to: TestNode): Stream[] =>
    from.libp2p.getConnections(to.libp2p.peerId).flatMap(c => c.streams).filter(s => s.protocol === askerClones.protocol && s.direction === 'outbound' && s.status === 'open')

  it('a primary\'s pushes to a peer share one stream, answered by id; any other request opens a stream of its own', async () => {
    behaviour = (id, stream) => { writeFrame(stream, fakeSigner.sign('cell', CloneAnswer.encode(answerOf(id)))) }
    await pushTo(askerClones, fake.id)
    const [stream] = cloneStreams(asker, fake)
    assert.ok(stream !== undefined, 'the stream stays open after its first answer')
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await pushTo(askerClones, fake.id)))
    assert.equal(answers.length, 10)
    assert.deepEqual(cloneStreams(asker, fake), [stream], 'the same stream carried them all')
    await askerClones.inventoryOf(fake.id, 'shop')
    await waitFor(() => cloneStreams(asker, fake).length === 1, { what: 'the inventory ask\'s own stream to close' })
    assert.deepEqual(cloneStreams(asker, fake), [stream])
    // a real clone service answers on the shared stream too (it holds no clone: a clear error)
    await assert.rejects(pushTo(askerClones, answerer.id), /no clone of shop\/counter#0 here/)
    await assert.rejects(pushTo(askerClones, answerer.id), /no clone of shop\/counter#0 here/)
    assert.equal(cloneStreams(asker, answerer).length, 1)
  })

  it('answers out of order are matched to their requests by id', async () => {
    const held: Array<{ id: bigint, stream: Stream }> = []
    behaviour = (id, stream) => { held.push({ id, stream }) }
    const asked = Promise.all([0, 1, 2].map(async () => await pushTo(askerClones, fake.id)))
    await waitFor(() => held.length === 3, { what: 'three requests at the stand-in' })
    // the last asked is answered first
    for (const { id, stream } of [...held].reverse()) writeFrame(stream, fakeSigner.sign('cell', CloneAnswer.encode({ ...answerOf(id), version: id })))
    assert.deepEqual((await asked).map(a => a.version), held.map(h => h.id))
  })

  it('more requests under way than one stream carries get a stream each', async () => {
    seen.clear()
    const held: Array<{ id: bigint, stream: Stream }> = []
    behaviour = (id, stream) => { held.push({ id, stream }) }
    const total = SESSION_REQUESTS + 6
    const asked = Promise.all(Array.from({ length: total }, async () => await pushTo(askerClones, fake.id)))
    await waitFor(() => held.length === total, { what: 'every request at the stand-in' })
    for (const { id, stream } of held) writeFrame(stream, fakeSigner.sign('cell', CloneAnswer.encode(answerOf(id))))
    assert.equal((await asked).length, total)
    const counts = [...seen.values()].sort((a, b) => b - a)
    assert.deepEqual(counts, [SESSION_REQUESTS, 1, 1, 1, 1, 1, 1])
  })

  it('refuses bad answers with a one-line reason, failing the requests on that stream; the next request opens another', async () => {
    const signed = (id: bigint): Uint8Array => fakeSigner.sign('cell', CloneAnswer.encode(answerOf(id)))
    let replayable: Uint8Array | undefined
    const cases: Array<[string, Behaviour, RegExp]> = [
      ['garbage', (_id, s) => { writeFrame(s, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])) }, /^rejected answer: malformed$/],
      ['another node\'s', (id, s) => { writeFrame(s, createFrameSigner(answerer.key).sign('cell', CloneAnswer.encode(answerOf(id)))) }, /^rejected answer: wrong-sender$/],
      ['forged', (id, s) => { const f = signed(id); f[f.length - 1] ^= 1; writeFrame(s, f) }, /^rejected answer: bad-signature$/],
      ['wrong kind', (id, s) => { writeFrame(s, fakeSigner.sign('code', CloneAnswer.encode(answerOf(id)))) }, /^rejected answer: wrong-kind$/],
      ['malformed payload', (_id, s) => { writeFrame(s, fakeSigner.sign('cell', new Uint8Array([0xff, 0xff, 0xff]))) }, /^rejected answer: malformed$/],
      ['unknown id', (id, s) => { writeFrame(s, signed(id + 1000n)) }, /^rejected answer: unknown request id \d+$/],
      ['oversized', (_id, s) => { const p = new Uint8Array(4); new DataView(p.buffer).setUint32(0, 64 * 1024 * 1024); s.send(p) }, /^rejected answer: frame of 67108864 bytes over the \d+-byte limit$/],
      ['truncated', (id, s) => { s.send(encodeFrame(signed(id)).subarray(0, 40)); s.close().catch(() => {}) }, /^rejected answer: truncated \(40 bytes of an incomplete frame\)$/],
      // the first answer is taken, the same bytes sent again for the next request are not
      ['replayed', (id, s) => { replayable ??= signed(id); writeFrame(s, replayable) }, /^rejected answer: replayed$/]
    ]
    for (const [name, bad, reason] of cases) {
      behaviour = bad
      if (name === 'replayed') await pushTo(askerClones, fake.id)
      await assert.rejects(pushTo(askerClones, fake.id), (err: Error) => { assert.match(err.message, reason, name); return true })
      await waitFor(() => cloneStreams(asker, fake).length === 0, { what: `the stream of the ${name} answer to end` })
    }
    // still asking: a new stream
    behaviour = (id, s) => { writeFrame(s, signed(id)) }
    await pushTo(askerClones, fake.id)
  })

  it('a request that goes unanswered retires its stream (it may be stuck): the next request goes on a new one, the old one closes once its requests settle', async () => {
    seen.clear()
    const held: Array<{ id: bigint, stream: Stream }> = []
    behaviour = (id, stream) => { held.push({ id, stream }) }
    const given = new AbortController()
    const abandoned = pushTo(askerClones, fake.id, given.signal)
    const waiting = pushTo(askerClones, fake.id)
    await waitFor(() => held.length === 2, { what: 'two requests on the first stream' })
    const [first] = cloneStreams(asker, fake)
    given.abort()
    await assert.rejects(abandoned, /timed out/)
    // a new request: not on the stuck stream
    behaviour = (id, stream) => { writeFrame(stream, fakeSigner.sign('cell', CloneAnswer.encode(answerOf(id)))) }
    await pushTo(askerClones, fake.id)
    assert.deepEqual([...seen.values()], [2, 1], 'the third request went on a new stream')
    assert.equal(first.status, 'open', 'the retired stream stays while a request waits on it')
    // its last request is answered there; then it closes
    writeFrame(held[1].stream, fakeSigner.sign('cell', CloneAnswer.encode(answerOf(held[1].id))))
    await waiting
    await waitFor(() => first.status !== 'open', { what: 'the retired stream to close' })
  })

  it('a peer judged down fails the requests waiting on it at once, not at their timeout (20 s here); the next request opens a new stream', async () => {
    const held: Array<{ id: bigint, stream: Stream }> = []
    // a stalled node: it reads the requests and never answers
    behaviour = (id, stream) => { held.push({ id, stream }) }
    const total = SESSION_REQUESTS + 2
    const asked = [...Array.from({ length: total }, async () => await pushTo(askerClones, fake.id)), askerClones.inventoryOf(fake.id, 'shop')]
    await waitFor(() => held.length === total + 1, { what: 'every request at the stalled stand-in' })
    const started = performance.now()
    askerClones.peerDown(fake.id)
    const outcomes = await Promise.allSettled(asked)
    assert.ok(performance.now() - started < 10_000, 'failed long before the 20 s timeout')
    assert.deepEqual(new Set(outcomes.map(o => o.status === 'rejected' ? (o.reason as Error).message : 'answered')), new Set([`node ${fake.id} was judged down`]), 'the shared stream, those of the busy moment and an inventory ask\'s own')
    await waitFor(() => cloneStreams(asker, fake).length === 0, { what: 'the streams to the stalled node to end' })
    behaviour = (id, s) => { writeFrame(s, fakeSigner.sign('cell', CloneAnswer.encode(answerOf(id)))) }
    await askerClones.inventoryOf(fake.id, 'shop')
  })

  it('refuses a replayed, a truncated request and more requests under way than a stream may carry, ending the stream', async () => {
    const stranger = createFrameSigner(fake.key)
    // replayed: the same signed request twice on one stream
    const replayed = await fake.libp2p.dialProtocol(answerer.libp2p.peerId, answererClones.protocol)
    const answers: bigint[] = []
    readFrames(replayed, 1 << 20, { onFrame: b => { answers.push(CloneAnswer.decode(Frame.decode(b).cell as Uint8Array).id) }, onOversized: () => {}, onClose: () => {} })
    const request = stranger.sign('cell', CloneRequest.encode(inventory(7n)))
    const before = answererClones.rejections().replayed
    writeFrame(replayed, request)
    await waitFor(() => answers.length === 1, { what: 'the answer to the first request' })
    assert.deepEqual(answers, [7n], 'the answer carries the request\'s id')
    writeFrame(replayed, request)
    await waitFor(() => replayed.status !== 'open', { what: 'the replayed request to end the stream' })
    assert.equal(answererClones.rejections().replayed, before + 1)

    // truncated: the asker closes its end in the middle of a frame (a whole one ends the stream gracefully)
    for (const cut of [false, true]) {
      const stream = await fake.libp2p.dialProtocol(answerer.libp2p.peerId, answererClones.protocol)
      const bytes = encodeFrame(stranger.sign('cell', CloneRequest.encode(inventory(1n))))
      stream.send(cut ? bytes.subarray(0, 30) : bytes)
      const ended = new Promise<Error | undefined>(resolve => { stream.addEventListener('close', evt => { resolve(evt.error) }, { once: true }) })
      await stream.close().catch(() => {})
      const error = await ended
      assert.equal(error !== undefined, cut, cut ? 'a truncated request resets the stream' : 'a whole request is answered and the stream closes')
    }

    // one frame carrying more requests than a stream may have under way
    const flood = await fake.libp2p.dialProtocol(answerer.libp2p.peerId, answererClones.protocol)
    const frames = Array.from({ length: SESSION_REQUESTS + 1 }, (_, i) => encodeFrame(stranger.sign('cell', CloneRequest.encode(inventory(BigInt(i + 1))))))
    flood.send(Buffer.concat(frames))
    await waitFor(() => flood.status !== 'open', { what: 'the flooded stream to end' })
    // still serving
    assert.deepEqual(await askerClones.inventoryOf(answerer.id, 'shop'), [])
  })
})
