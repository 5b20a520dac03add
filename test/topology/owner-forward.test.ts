// Owner requests forwarded by a node outside an app's group to a member, over
// /stem/<mesh>/owner/1 between real libp2p nodes: the member verifies the owner-signed
// request (openOwnerRequest) and applies it to a real app state machine. Malformed,
// oversized, truncated, forged and replayed requests are refused without effect.
import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { createEd25519Key, peerIdOf } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { encodeFrame, readOne, writeFrame } from '../../src/messaging/framing.js'
import { OwnerForward } from '../../src/wire/proto/owner.js'
import { applyCommand } from '../../src/topology/app-state.js'
import type { AppState } from '../../src/topology/app-state.js'
import { openOwnerRequest, signOwnerRequest } from '../../src/topology/owner-request.js'
import type { OwnerRequest, SignedOwnerRequest } from '../../src/topology/owner-request.js'
import { decodeOwnerAnswer, decodeOwnerForward, encodeOwnerAnswer, encodeOwnerForward, MAX_ANSWER_BYTES, MAX_FORWARD_BYTES } from '../../src/topology/owner-forward-codec.js'
import { createOwnerForwarder, NotMemberError } from '../../src/topology/owner-forwarder.js'
import type { OwnerForwarder } from '../../src/topology/owner-forwarder.js'
import type { AppManifest } from '../../src/topology/manifest.js'
import { waitFor } from '../support/wait.js'
import { MESH, createLibp2pNode, type TestLibp2p } from '../messaging/helpers.js'

const manifest: AppManifest = { app: 'shop', cells: { counter: { code: './c.js', replicas: 1, clones: 0, memory: 16 * 2 ** 20, timeout: 100, mailbox: 10, bundle: 'a'.repeat(64) } }, routes: [] }

interface Peer { key: PrivateKey, libp2p: TestLibp2p, id: string, forwarder: OwnerForwarder }

describe('owner requests forwarded to an app group member', function () {
  this.timeout(60_000)
  let owner: PrivateKey
  let outsider: Peer
  let member: Peer
  let stranger: Peer
  /** the member's app: a real state machine, owner checks and replay refusal included */
  let state: AppState | undefined
  let handled = 0
  let at = 0

  const peer = async (handle: Parameters<typeof createOwnerForwarder>[0]['handle']): Promise<Peer> => {
    const key = await createEd25519Key()
    const libp2p = await createLibp2pNode(key)
    const forwarder = createOwnerForwarder({ libp2p, signer: createFrameSigner(key), handle }, { mesh: MESH, timeout: 10_000, dialTimeout: 2000 })
    await forwarder.start()
    return { key, libp2p, id: libp2p.peerId.toString(), forwarder }
  }
  const signed = async (request: Partial<OwnerRequest> & { op: OwnerRequest['op'] }, key = owner): Promise<SignedOwnerRequest> =>
    await signOwnerRequest(key, { app: 'shop', at: ++at, ...request } as OwnerRequest)

  before(async () => {
    owner = await createEd25519Key()
    outsider = await peer(async () => { throw new NotMemberError('not in the group of app shop') })
    stranger = await peer(async () => { throw new NotMemberError('not in the group of app shop') })
    member = await peer(async (s) => {
      handled++
      const opened = await openOwnerRequest(s)
      const r = opened.request
      const fields = { id: `c${handled}`, owner: opened.owner, ownerKey: opened.ownerKey, at: r.at }
      const applied = applyCommand(state, r.op === 'publish' ? { ...fields, kind: 'publish', manifest: r.manifest } : r.op === 'scale' ? { ...fields, kind: 'scale', cell: r.cell, replicas: r.replicas } : { ...fields, kind: 'revert', cell: r.cell })
      if (!applied.result.ok) throw new Error(applied.result.error)
      state = applied.state
      return { changed: applied.result.changed }
    })
    for (const other of [member, stranger]) await outsider.libp2p.dial(other.libp2p.getMultiaddrs()[0])
    const first = await outsider.forwarder.forward('shop', [member.id], await signed({ op: 'publish', manifest }))
    assert.deepEqual(first, { changed: true })
  })

  after(async () => {
    for (const p of [outsider, member, stranger]) {
      await p.forwarder.stop()
      await p.libp2p.stop()
    }
  })

  it('skips members that are gone or not in the group, and takes the first member’s answer', async () => {
    const gone = (await createEd25519Key()).publicKey
    const result = await outsider.forwarder.forward('shop', [peerIdOf(gone), stranger.id, outsider.id, member.id], await signed({ op: 'scale', cell: 'counter', replicas: 3 }))
    assert.deepEqual(result, { changed: true })
    assert.equal(state?.manifest.cells.counter.replicas, 3)
    await assert.rejects(outsider.forwarder.forward('shop', [stranger.id], await signed({ op: 'scale', cell: 'counter', replicas: 2 })), /no member of its group took the request \(.*not in the group\)/)
  })

  it('the member refuses forged, replayed and foreign requests exactly like its own API', async () => {
    const before = structuredClone(state)
    const good = await signed({ op: 'scale', cell: 'counter', replicas: 4 })
    const forged = { ...good, request: good.request.replace('"replicas":4', '"replicas":9') }
    await assert.rejects(outsider.forwarder.forward('shop', [member.id], forged), /invalid owner request: bad signature/)
    const otherOwner = await signed({ op: 'revert' }, await createEd25519Key())
    await assert.rejects(outsider.forwarder.forward('shop', [member.id], otherOwner), /belongs to owner/)
    assert.deepEqual(state, before)
    assert.deepEqual(await outsider.forwarder.forward('shop', [member.id], good), { changed: true })
    // the same owner request again, in a new frame: the owner's clock says it is a replay
    await assert.rejects(outsider.forwarder.forward('shop', [member.id], good), /stale request/)
    assert.equal(state?.manifest.cells.counter.replicas, 4)
  })

  /** sends raw bytes on a new stream from the outsider to the member; resolves with the answer frame or the failure */
  const raw = async (bytes: Uint8Array): Promise<{ answer?: Uint8Array, error?: string }> => {
    const stream = await outsider.libp2p.dialProtocol(peerIdFromString(member.id), member.forwarder.protocol)
    const answer = readOne(stream, MAX_ANSWER_BYTES + 256, AbortSignal.timeout(10_000))
    stream.send(bytes)
    // nothing more comes from this end: a truncated frame stays truncated
    stream.close({ signal: AbortSignal.timeout(10_000) }).catch(() => {})
    try {
      return { answer: await answer }
    } catch (err) {
      return { error: (err as Error).message }
    } finally {
      stream.abort(new Error('test done'))
    }
  }

  it('refuses frames that are forged, replayed, oversized, truncated or malformed, and keeps serving', async () => {
    const count = handled
    const rejected = member.forwarder.rejected()
    const request = await signed({ op: 'scale', cell: 'counter', replicas: 5 })
    // forged: a frame signed by a key that is not the connection's remote peer
    const impostor = createFrameSigner(await createEd25519Key())
    assert.ok((await raw(encodeFrame(impostor.sign('leaders', encodeOwnerForward(request))))).error !== undefined)
    // wrong payload kind
    assert.ok((await raw(encodeFrame(createFrameSigner(outsider.key).sign('raft', encodeOwnerForward(request))))).error !== undefined)
    // oversized length prefix
    const huge = new Uint8Array(8)
    new DataView(huge.buffer).setUint32(0, MAX_FORWARD_BYTES + 10_000)
    assert.ok((await raw(huge)).error !== undefined)
    // truncated frame: the stream ends before it is complete
    const frame = encodeFrame(createFrameSigner(outsider.key).sign('leaders', encodeOwnerForward(request)))
    assert.ok((await raw(frame.subarray(0, frame.byteLength - 10))).error !== undefined)
    assert.equal(handled, count, 'no bad frame reached the handler')
    await waitFor(() => member.forwarder.rejected() >= rejected + 2, { what: 'the forged and wrong-kind frames to be counted' })
    // a well-signed frame with a malformed payload gets a one-line refusal
    const signer = createFrameSigner(outsider.key)
    const malformed = await raw(encodeFrame(signer.sign('leaders', new Uint8Array([0x0a, 0xff, 0x01]))))
    assert.match(Buffer.from(malformed.answer ?? []).toString('latin1'), /invalid forwarded owner request/)
    // a valid frame is carried out once; the same frame again is a replay
    const once = encodeFrame(signer.sign('leaders', encodeOwnerForward(request)))
    assert.ok((await raw(once)).answer !== undefined)
    assert.equal(state?.manifest.cells.counter.replicas, 5)
    assert.ok((await raw(once)).error !== undefined, 'a replayed frame is dropped')
    assert.equal(handled, count + 1)
    // and the protocol still serves (from another node: the test's own signer for the
    // outsider's key has moved the member's replay window past the outsider's forwarder)
    await stranger.libp2p.dial(member.libp2p.getMultiaddrs()[0])
    assert.deepEqual(await stranger.forwarder.forward('shop', [member.id], await signed({ op: 'scale', cell: 'counter', replicas: 1 })), { changed: true })
  })

  it('the codec refuses malformed, oversized and incomplete requests and answers', () => {
    const s: SignedOwnerRequest = { request: '{"op":"revert","app":"shop","at":1}', owner: 'b3du', signature: 'c2ln' }
    assert.deepEqual(decodeOwnerForward(encodeOwnerForward(s)), s)
    assert.throws(() => decodeOwnerForward(new Uint8Array(MAX_FORWARD_BYTES + 1)), /invalid forwarded owner request: .* bytes/)
    assert.throws(() => decodeOwnerForward(new Uint8Array([0x0a, 0x05, 0x01])), /invalid forwarded owner request/)
    assert.throws(() => decodeOwnerForward(encodeOwnerForward(s).subarray(0, 12)), /invalid forwarded owner request/)
    assert.throws(() => decodeOwnerForward(OwnerForward.encode({ request: s.request, owner: '', signature: s.signature })), /needs request, owner and signature/)
    assert.throws(() => decodeOwnerForward(OwnerForward.encode({ ...s, request: 'x'.repeat(300 * 1024) })), /over .* characters/)
    const answer = { ok: false, error: 'line one\nline two', changed: false, notMember: false }
    assert.deepEqual(decodeOwnerAnswer(encodeOwnerAnswer(answer)), { ...answer, error: 'line one' })
    assert.throws(() => decodeOwnerAnswer(new Uint8Array(MAX_ANSWER_BYTES + 1)), /invalid owner answer/)
    assert.throws(() => decodeOwnerAnswer(new Uint8Array([0x12, 0x09, 0x41])), /invalid owner answer/)
    assert.throws(() => decodeOwnerAnswer(new Uint8Array(0)), /refusal without a reason/)
  })
})
