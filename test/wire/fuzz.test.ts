// Fuzzing every decoder and verifier of network input: 100,000 mutated copies of a valid
// encoding each (bit flips, byte changes, insertions, deletions, truncation, junk appended,
// slices duplicated). Verifiers never throw and accept no mutated frame; decoders either
// decode or throw their own one-line refusal, never an unexpected exception. Seeded: a
// failing seed replays exactly. All of it stays well under 30 s so it runs in every npm test.
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { createEd25519Key, peerIdOf } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { createFrameSigner, createFrameVerifier, PAYLOAD_KINDS } from '../../src/wire/frame.js'
import { setLogLevel } from '../../src/util/logger.js'
import { decodeAdvert, encodeAdvert } from '../../src/mesh/capacity.js'
import { decodeInvite, encodeInvite } from '../../src/mesh/invite.js'
import { generateMeshKey } from '../../src/mesh/mesh-config.js'
import { BatchBuilder, decodeBatch } from '../../src/raft/multi/raft-batch.js'
import { decodeConfChange, encodeConfChange, makeMessage } from '../../src/raft/core/index.js'
import { ConfChangeType, EntryType, MessageType } from '../../src/raft/types.js'
import { CellBatch, CellEnvelope } from '../../src/wire/proto/cell.js'
import { encodeBatch, encodeEnvelope } from '../../src/messaging/envelope-codec.js'
import { CodeMessage } from '../../src/wire/proto/code.js'
import { decodeBundle, encodeBundle, signBundle, verifyBundle } from '../../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../../src/cells/limits.js'
import { decodeOwnerForward, encodeOwnerForward } from '../../src/topology/owner-forward-codec.js'
import { openOwnerRequest, signOwnerRequest } from '../../src/topology/owner-request.js'
import type { OwnerRequest } from '../../src/topology/owner-request.js'
import { decodeLeadersMessage, encodeAppAnnouncement } from '../../src/topology/announcement.js'
import { prng } from '../support/prng.js'
import type { Prng } from '../support/prng.js'

const N = 100_000

/** A mutated copy of `bytes` (1–3 mutations), never equal to it. */
function mutate (bytes: Uint8Array, rand: Prng): Uint8Array {
  for (;;) {
    let out: Uint8Array = bytes.slice()
    for (let m = rand.int(1, 3); m > 0; m--) {
      const at = rand.int(0, Math.max(0, out.length - 1))
      switch (rand.int(0, 7)) {
        case 0: if (out.length > 0) out[at] ^= 1 << rand.int(0, 7); break
        case 1: if (out.length > 0) out[at] = rand.int(0, 255); break
        case 2: out = splice(out, at, 0, Uint8Array.of(rand.int(0, 255))); break
        case 3: if (out.length > 0) out = splice(out, at, 1, new Uint8Array(0)); break
        case 4: out = out.subarray(0, rand.int(0, out.length)); break
        case 5: out = splice(out, out.length, 0, Uint8Array.from({ length: rand.int(1, 8) }, () => rand.int(0, 255))); break
        case 6: out = splice(out, at, 0, out.slice(at, at + rand.int(1, 16))); break
        default: if (out.length > 0) out[at] = [0x00, 0x7f, 0x80, 0xff][rand.int(0, 3)]
      }
    }
    if (Buffer.compare(out, bytes) !== 0) return out
  }
}

/** `bytes` with `remove` bytes at `at` replaced by `insert` (a new array). */
function splice (bytes: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length)
  out.set(bytes.subarray(0, at), 0)
  out.set(insert, at)
  out.set(bytes.subarray(at + remove), at + insert.length)
  return out
}

/** Runs `decode` on N mutations; anything it throws must be an Error with a one-line message matching `refusal`. */
function fuzzDecoder (name: string, sample: Uint8Array, decode: (bytes: Uint8Array) => unknown, refusal: RegExp, seed: number): { decoded: number, refused: number } {
  const rand = prng(seed)
  decode(sample)
  let decoded = 0
  let refused = 0
  for (let i = 0; i < N; i++) {
    const bytes = mutate(sample, rand)
    try {
      decode(bytes)
      decoded++
    } catch (err) {
      if (!(err instanceof Error) || !refusal.test(err.message) || err.message.includes('\n')) {
        assert.fail(`${name}, mutation ${i} (seed ${seed}): unexpected ${String((err as Error)?.stack ?? err)}\n  bytes ${Buffer.from(bytes).toString('hex')}`)
      }
      refused++
    }
  }
  return { decoded, refused }
}

describe('wire: fuzzing every decoder and verifier (100,000 mutated inputs each)', function () {
  this.timeout(60_000)
  let key: PrivateKey
  before(async () => {
    setLogLevel('silent')
    key = await createEd25519Key()
  })
  after(() => { setLogLevel('info') })

  it('the frame verifier: every kind, 0 exceptions, 0 mutated frames accepted, replays refused', () => {
    const signer = createFrameSigner(key)
    const payload = new TextEncoder().encode('a batch of messages')
    const rand = prng(6)
    let accepted = 0
    let threw = 0
    const verifier = createFrameVerifier()
    for (const kind of PAYLOAD_KINDS) {
      const frame = signer.sign(kind, payload)
      for (let i = 0; i < N / PAYLOAD_KINDS.length; i++) {
        try {
          if (verifier.verify(mutate(frame, rand), { remotePeer: signer.peerId, expect: kind }).ok) accepted++
        } catch {
          threw++
        }
      }
      // the original is accepted once, then refused as replayed
      assert.equal(verifier.verify(frame, { remotePeer: signer.peerId, expect: kind }).ok, true)
      assert.deepEqual(verifier.verify(frame, { remotePeer: signer.peerId, expect: kind }), { ok: false, reason: 'replayed' })
    }
    assert.equal(threw, 0)
    assert.equal(verifier.unexpected(), 0, 'no rejection came from an unexpected exception')
    assert.equal(accepted, 0, `${accepted} mutated frames accepted`)
  })

  it('the frame verifier refuses every other byte in front of the signature (its tag and length)', () => {
    const signer = createFrameSigner(key)
    const frame = signer.sign('raft', new Uint8Array([1, 2, 3]))
    const tagAt = frame.length - 66
    assert.equal(frame[tagAt], 122)
    for (let b = 0; b < 256; b++) {
      if (b === 122) continue
      const forged = Uint8Array.from(frame)
      forged[tagAt] = b
      assert.equal(createFrameVerifier().verify(forged).ok, false, `tag byte ${b}`)
    }
    assert.equal(createFrameVerifier().verify(frame).ok, true)
  })

  it('the payload decoders: capacity adverts, raft batches, conf changes, cell batches and envelopes, code messages, leaders messages', async () => {
    fuzzDecoder('capacity advert', encodeAdvert({
      peer: 'p', addrs: ['/ip4/127.0.0.1/tcp/1'], contributed: { cpu: 1, memory: 1024, cells: 1 }, free: { cpu: 1, memory: 1024, cells: 1 }, version: 1n, leaving: false, interval: 1000, load: { 'shop/a#0': 2.5 }
    }), decodeAdvert, /./, 1)

    const batch = new BatchBuilder()
    batch.add('g', makeMessage({ type: MessageType.App, to: 'n2', term: 2, index: 4, logTerm: 1, commit: 4, entries: [{ term: 2, index: 5, type: EntryType.Normal, data: new Uint8Array([1, 2]) }] }))
    batch.add('g', makeMessage({ type: MessageType.Heartbeat, to: 'n2', term: 2 }))
    fuzzDecoder('raft batch', batch.encode(), bytes => decodeBatch(bytes, 'n1', 'n2'), /^malformed raft batch: /, 2)
    fuzzDecoder('conf change', encodeConfChange({ type: ConfChangeType.AddNode, node: 'n-with-a-longer-id' }), decodeConfChange, /^raft conf change: /, 3)

    const envelope = encodeEnvelope({ ask: { id: new Uint8Array(16).fill(7), to: 'shop/counter#0', method: 'increment', args: '[5]', deadline: 123456789n, from: 'shop/x#0' } })
    fuzzDecoder('cell batch', encodeBatch([envelope, envelope]), bytes => CellBatch.decode(bytes).messages.map(m => CellEnvelope.decode(m)), /./, 4)
    fuzzDecoder('code message', CodeMessage.encode({ fetch: { hash: new Uint8Array(32).fill(1) } }), bytes => CodeMessage.decode(bytes), /./, 5)

    fuzzDecoder('leaders message', encodeAppAnnouncement({
      app: 'shop', owner: 'owner-id', leader: 'n1', term: 2n, version: 10n, members: ['n1', 'n2', 'n3'],
      instances: [{ address: 'shop/counter#0', node: 'n2', epoch: 1n, state: 'transformed', clones: ['n3'], clonesReady: [] }],
      cells: [{ name: 'counter', replicas: 1, timeout: 100 }], routes: [{ method: 'GET', path: '/count', cell: 'counter', handler: 'get' }], reverted: false
    }), decodeLeadersMessage, /^invalid /, 7)
  })

  it('owner-signed objects: bundles and owner requests decode or refuse, and no mutated one verifies', async () => {
    const bundle = await signBundle({ app: 'shop', cell: 'counter', entry: 'c.js', code: 'export default class C { x () { return 1 } }', limits: DEFAULT_LIMITS }, key)
    const decodedBundles: Array<ReturnType<typeof decodeBundle>> = []
    fuzzDecoder('bundle', encodeBundle(bundle), bytes => { decodedBundles.push(decodeBundle(bytes)) }, /^(malformed bundle|bundle |bundle too large)/, 8)
    // a mutation outside the signed body (an unknown field of the envelope) may decode to the
    // very same bundle: only a bundle that differs from the original may not verify
    const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(a, b) === 0
    let forged = 0
    for (const b of decodedBundles) {
      if (same(b.body, bundle.body) && same(b.owner, bundle.owner) && same(b.signature, bundle.signature)) continue
      try { await verifyBundle(b, key.publicKey); forged++ } catch (err) { assert.match((err as Error).message, /^bundle /) }
    }
    assert.equal(forged, 0, `${forged} of ${decodedBundles.length} decodable mutated bundles verified`)

    const request = await signOwnerRequest(key, { app: 'shop', at: 1, op: 'revert' } as OwnerRequest)
    const opened: Array<ReturnType<typeof decodeOwnerForward>> = []
    fuzzDecoder('owner forward', encodeOwnerForward(request), bytes => { opened.push(decodeOwnerForward(bytes)) }, /./, 9)
    let accepted = 0
    for (const signed of opened) {
      let open
      try { open = await openOwnerRequest(signed) } catch (err) { assert.match((err as Error).message, /^invalid owner request: /); continue }
      // lenient base64 may decode a mutated text to the same key and signature: only another request would be a forgery
      if (open.signed.request !== request.request || open.ownerKey !== request.owner) accepted++
    }
    assert.equal(accepted, 0, `${accepted} mutated owner requests opened as a different request`)
  })

  it('invite tokens: mutated text decodes or is refused with one line', () => {
    const token = encodeInvite({ mesh: 'home', key: generateMeshKey(), bootstrap: [multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${peerIdOf(key.publicKey)}`)] })
    const bytes = new TextEncoder().encode(token)
    fuzzDecoder('invite', bytes, b => decodeInvite(new TextDecoder().decode(b)), /./, 10)
  })
})
