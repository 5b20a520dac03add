import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { encodeBundle } from '../../src/cells/bundle.js'
import type { CellBundle } from '../../src/cells/bundle.js'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { createBundleStore } from '../../src/messaging/bundle-store.js'
import { encodeFrame } from '../../src/messaging/framing.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { CodeMessage } from '../../src/wire/proto/code.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler } from '../cells/helpers.js'
import type { Bundler } from '../cells/helpers.js'
import { connectAll, createLibp2pNode, createTestNode, MESH } from './helpers.js'
import type { TestNode, TestLibp2p } from './helpers.js'

const CODE = `/stem/${MESH}/code/1`

/** The first frame the other end sends on `stream` (length-prefixed), or undefined if it closes first. */
async function firstFrame (stream: Stream): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk.subarray())
  } catch {}
  const all = Buffer.concat(chunks)
  return all.byteLength >= 4 ? all.subarray(4, 4 + all.readUInt32BE(0)) : undefined
}

describe('messaging: code protocol and remote transform', function () {
  let b: Bundler
  let alice: TestNode
  let bob: TestNode
  let carol: TestNode
  let bundle: CellBundle

  before(async () => {
    b = await createBundler()
    const directory = createStaticDirectory()
    alice = await createTestNode(directory)
    bob = await createTestNode(directory)
    carol = await createTestNode(directory)
    await connectAll([alice, bob, carol])
    // identify tells each node that the others speak the DHT protocol
    await waitFor(async () => {
      for (const n of [alice, bob, carol]) {
        for (const peer of n.libp2p.getPeers()) if (!(await n.libp2p.peerStore.get(peer)).protocols.includes(`/stem/${MESH}/kad/1`)) return false
        if (n.libp2p.getPeers().length < 2) return false
      }
      return true
    }, { what: 'DHT peers identified' })
    bundle = await b.bundle('shop/counter', COUNTER)
  })
  after(async () => {
    await Promise.all([alice, bob, carol].map(async n => await n?.stop()))
    b.dir.remove()
  })

  it('transforms a cell on a peer that fetches the bundle from a third node found through DHT provider records', async function () {
    this.timeout(120_000)
    // Alice publishes; Carol fetches a copy (finding Alice as a provider) and announces it
    await alice.bundles.publish(bundle)
    const atCarol = await carol.bundles.fetch(bundle.hash)
    assert.equal(atCarol.hash, bundle.hash)
    assert.equal(await carol.store.has(bundle.hash), true)
    // a fetched bundle is announced in the background; wait for Carol's record deterministically
    await carol.bundles.announce(bundle.hash)
    // the publisher drops its copy: Bob can only get it from Carol
    await alice.store.remove(bundle.hash)
    const fetched: Array<{ hash: string, from: string }> = []
    bob.bundles.addEventListener('bundle:fetched', e => { fetched.push(e.detail) })
    const info = await alice.messaging.transformRemote(bob.id, { address: 'shop/counter#0', bundle: bundle.hash, owner: bundle.owner })
    assert.equal(info.status, 'transformed')
    assert.equal(info.hash, bundle.hash)
    assert.deepEqual(fetched, [{ hash: bundle.hash, from: carol.id }])
    assert.equal(carol.bundles.counts().served >= 1, true)
    assert.equal(await bob.runtime.ask('shop/counter#0', 'increment', [4]), 4)
    // Bob now holds it and is a provider too
    assert.equal(await bob.store.has(bundle.hash), true)
  })

  it('a node with no peers publishes a bundle at once (a fault: the DHT announce waited out its whole deadline, 5 s per stem publish on a one-node mesh)', async function () {
    const lone = await createTestNode(createStaticDirectory())
    try {
      const other = await b.bundle('shop/lone', COUNTER)
      // no signal: before the fix the announce to nobody never ended, and this timed out
      this.timeout(20_000)
      assert.equal((await lone.bundles.publish(other)).hash, other.hash)
    } finally {
      await lone.stop()
    }
  })

  it('refuses a remote transform with a bundle signed by someone else, or one nobody holds', async function () {
    this.timeout(60_000)
    const stranger = await createEd25519Key()
    const { encodePublicKey } = await import('../../src/wire/keys.js')
    await alice.bundles.publish(bundle)
    await assert.rejects(alice.messaging.transformRemote(carol.id, { address: 'shop/counter#1', bundle: bundle.hash, owner: encodePublicKey(stranger.publicKey) }), /not by the app owner/)
    assert.equal(carol.runtime.cell('shop/counter#1')?.status ?? 'none', 'none')
    await assert.rejects(alice.messaging.transformRemote(carol.id, { address: 'shop/counter#1', bundle: 'ab'.repeat(32), owner: bundle.owner, limits: undefined }, { deadline: Date.now() + 15_000 }), /cannot fetch bundle abab/)
    await assert.rejects(alice.messaging.transformRemote(carol.id, { address: 'shop/counter#1', bundle: 'nothex', owner: bundle.owner }), /invalid bundle id/)
  })

  it('a node refuses a remote transform its refuseTransform hook refuses, naming why', async function () {
    this.timeout(60_000)
    const guarded = await createTestNode(createStaticDirectory(), { messaging: { refuseTransform: (peer, request) => peer === bob.id ? undefined : `only ${bob.id} places ${request.address}` } })
    try {
      await connectAll([alice, guarded])
      await alice.bundles.publish(bundle)
      await assert.rejects(alice.messaging.transformRemote(guarded.id, { address: 'shop/counter#3', bundle: bundle.hash, owner: bundle.owner }), new RegExp(`may not transform shop/counter#3 here: only ${bob.id} places`))
      assert.equal(guarded.runtime.cell('shop/counter#3')?.status ?? 'none', 'none')
    } finally {
      await guarded.stop()
    }
  })

  it('the bundle store verifies on write, writes atomically and drops a corrupted file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stem-store-'))
    try {
      const store = createBundleStore(dir)
      const encoded = encodeBundle(bundle)
      const stored = await store.put(encoded)
      assert.equal(stored.hash, bundle.hash)
      assert.deepEqual(await store.list(), [bundle.hash])
      await assert.rejects(store.put(encoded, 'cd'.repeat(32)), /not the requested/)
      await assert.rejects(store.put(encoded.subarray(0, encoded.byteLength - 10)), /malformed bundle/)
      const tampered = Buffer.from(encoded)
      tampered[tampered.byteLength - 1] ^= 1 // signature byte
      await assert.rejects(store.put(tampered), /bad signature/)
      const file = join(dir, `${bundle.hash}.bundle`)
      const bytes = readFileSync(file)
      bytes[bytes.indexOf(Buffer.from('increment'))] ^= 1
      writeFileSync(file, bytes)
      assert.equal(await store.get(bundle.hash), undefined)
      assert.deepEqual(await store.list(), [])
      await assert.rejects(store.get('../etc/passwd'), /invalid bundle id/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  describe('bad code-protocol input', function () {
    let mallory: TestLibp2p
    let key: Awaited<ReturnType<typeof createEd25519Key>>

    before(async () => {
      key = await createEd25519Key()
      mallory = await createLibp2pNode(key)
      await mallory.dial(carol.libp2p.getMultiaddrs()[0])
      await carol.bundles.publish(bundle)
    })
    after(async () => { await mallory?.stop() })

    const request = async (bytes: Uint8Array, close = true): Promise<Uint8Array | undefined> => {
      const stream = await mallory.dialProtocol(carol.libp2p.peerId, CODE)
      stream.send(bytes)
      if (close) await stream.close().catch(() => {})
      return await firstFrame(stream)
    }
    const rejected = (reason: string): number => carol.bundles.counts().rejected[reason] ?? 0

    it('answers a well-formed request from any peer', async () => {
      const signer = createFrameSigner(key)
      const answer = await request(encodeFrame(signer.sign('code', CodeMessage.encode({ fetch: { hash: Buffer.from(bundle.hash, 'hex') } }))))
      assert.ok(answer !== undefined)
      const { Frame } = await import('../../src/wire/proto/frame.js')
      const message = CodeMessage.decode(Frame.decode(answer).code as Uint8Array)
      assert.equal(Buffer.from(message.bundle?.hash ?? []).toString('hex'), bundle.hash)
    })

    it('rejects garbage, truncated, forged, replayed, oversized and malformed requests, and keeps serving', async () => {
      const signer = createFrameSigner(key)
      const before = { ...carol.bundles.counts().rejected }
      const delta = (reason: string): number => rejected(reason) - (before[reason] ?? 0)
      // garbage bytes inside a frame
      assert.equal(await request(encodeFrame(new Uint8Array(100).fill(7))), undefined)
      await waitFor(() => delta('malformed') >= 1, { what: 'garbage counted' })
      // truncated: a length prefix promising more than is sent
      const whole = encodeFrame(signer.sign('code', CodeMessage.encode({ fetch: { hash: Buffer.from(bundle.hash, 'hex') } })))
      assert.equal(await request(whole.subarray(0, whole.byteLength - 20)), undefined)
      await waitFor(() => delta('truncated') >= 1, { what: 'truncated counted' })
      // forged: signed by a key that is not the connection's peer
      const other = createFrameSigner(await createEd25519Key())
      assert.equal(await request(encodeFrame(other.sign('code', CodeMessage.encode({ fetch: { hash: Buffer.from(bundle.hash, 'hex') } })))), undefined)
      await waitFor(() => delta('wrong-sender') >= 1, { what: 'forged counted' })
      // replayed: the same signed request twice
      const once = encodeFrame(signer.sign('code', CodeMessage.encode({ fetch: { hash: Buffer.from(bundle.hash, 'hex') } })))
      assert.ok(await request(once) !== undefined)
      assert.equal(await request(once), undefined)
      await waitFor(() => delta('replayed') >= 1, { what: 'replay counted' })
      // oversized: a request frame may not be large
      const big = new Uint8Array(4 + 8)
      new DataView(big.buffer).setUint32(0, 1024 * 1024)
      assert.equal(await request(big, false), undefined)
      await waitFor(() => delta('oversized') >= 1, { what: 'oversized counted' })
      // a signed request with a wrong-size hash, and a frame of the wrong kind
      assert.equal(await request(encodeFrame(signer.sign('code', CodeMessage.encode({ fetch: { hash: new Uint8Array(5) } })))), undefined)
      await waitFor(() => delta('malformed-request') >= 1, { what: 'bad hash counted' })
      assert.equal(await request(encodeFrame(signer.sign('cell', new Uint8Array(3)))), undefined)
      await waitFor(() => delta('wrong-kind') >= 1, { what: 'wrong kind counted' })
      // still serving everyone
      assert.equal((await alice.bundles.fetch(bundle.hash, { peers: [carol.id] })).hash, bundle.hash)
    })

    it('refuses forged or substituted bundles from a lying peer and stores nothing', async function () {
      this.timeout(60_000)
      const other = await b.bundle('shop/other', 'export default class O { x () { return 1 } }')
      const signer = createFrameSigner(key)
      const lie = { mode: 'substitute' as 'substitute' | 'tamper' | 'garbage' }
      await mallory.handle(CODE, async stream => {
        await new Promise(resolve => { stream.addEventListener('message', resolve, { once: true }) })
        const tampered = Buffer.from(encodeBundle(bundle))
        tampered[tampered.indexOf(Buffer.from('increment'))] ^= 1
        const payload = lie.mode === 'substitute'
          ? CodeMessage.encode({ bundle: { hash: Buffer.from(bundle.hash, 'hex'), bundle: encodeBundle(other) as Uint8Array<ArrayBuffer> } })
          : lie.mode === 'tamper'
            ? CodeMessage.encode({ bundle: { hash: Buffer.from(bundle.hash, 'hex'), bundle: tampered } })
            : new Uint8Array([1, 2, 3])
        stream.send(encodeFrame(signer.sign('code', payload)))
        await stream.close()
      })
      const victim = bob
      await victim.libp2p.dial(mallory.getMultiaddrs()[0])
      const wanted = (await b.bundle('shop/fresh', COUNTER)).hash // held by nobody
      for (const mode of ['substitute', 'tamper', 'garbage'] as const) {
        lie.mode = mode
        await assert.rejects(victim.bundles.fetch(wanted, { peers: [mallory.peerId.toString()], signal: AbortSignal.timeout(20_000) }), /cannot fetch bundle/)
      }
      assert.equal(await victim.store.has(wanted), false)
    })
  })
})
