import assert from 'node:assert/strict'
import { createEd25519Key, peerIdOf } from '../../src/wire/keys.js'
import { createFrameSigner, createFrameVerifier, Frame, PAYLOAD_KINDS, signFrame } from '../../src/wire/frame.js'
import { setLogLevel } from '../../src/util/logger.js'

const payload = new TextEncoder().encode('batch of messages')

describe('wire/frame', () => {
  before(() => { setLogLevel('silent') })
  after(() => { setLogLevel('info') })

  it('signs and verifies a frame; the sender is the signer\'s peer id', async () => {
    const key = await createEd25519Key()
    const signer = createFrameSigner(key)
    const verifier = createFrameVerifier()
    const bytes = signer.sign('raft', payload)
    const result = verifier.verify(bytes, { remotePeer: signer.peerId })
    assert.equal(result.ok, true)
    if (!result.ok) return
    assert.equal(result.sender, peerIdOf(key.publicKey))
    assert.equal(result.kind, 'raft')
    assert.deepEqual(result.payload, payload)
    assert.equal(verifier.rejected(), 0)
  })

  it('numbers frames with increasing sequence numbers', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const a = Frame.decode(signer.sign('cell', payload))
    const b = Frame.decode(signer.sign('cell', payload))
    assert.ok(b.seq > a.seq)
  })

  it('the stateless signFrame produces the same bytes as re-encoding with the signature', async () => {
    const key = await createEd25519Key()
    const bytes = signFrame(key, { seq: 7n, timestamp: BigInt(Date.now()), kind: 'code', payload })
    const decoded = Frame.decode(bytes)
    assert.deepEqual(Frame.encode(decoded), bytes)
    assert.equal(createFrameVerifier().verify(bytes).ok, true)
  })

  it('writes exactly the bytes protons writes, for every payload kind, empty and large payloads and any seq', async () => {
    const key = await createEd25519Key()
    for (const kind of PAYLOAD_KINDS) {
      for (const body of [new Uint8Array(0), payload, new Uint8Array(70_000).fill(9)]) {
        for (const seq of [0n, 1n, 127n, 128n, BigInt(Date.now()) * 1000n, 2n ** 64n - 1n]) {
          for (const timestamp of [0n, BigInt(Date.now())]) {
            const bytes = signFrame(key, { seq, timestamp, kind, payload: body })
            assert.equal(Buffer.from(Frame.encode(Frame.decode(bytes))).toString('hex'), Buffer.from(bytes).toString('hex'))
          }
        }
      }
    }
  })

  it('rejects a tampered frame, counted as bad-signature', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier()
    const frame = Frame.decode(signer.sign('raft', payload))
    const tampered = Frame.encode({ ...frame, raft: new TextEncoder().encode('batch of messagez') })
    assert.deepEqual(verifier.verify(tampered), { ok: false, reason: 'bad-signature' })
    assert.equal(verifier.counts()['bad-signature'], 1)
  })

  it('rejects a forged frame: someone else\'s key in the sender field', async () => {
    const victim = await createEd25519Key()
    const forger = createFrameSigner(await createEd25519Key())
    const frame = Frame.decode(forger.sign('capacity', payload))
    const forged = Frame.encode({ ...frame, sender: new Uint8Array(createFrameSigner(victim).sender) })
    assert.deepEqual(createFrameVerifier().verify(forged, { forwarded: true }), { ok: false, reason: 'bad-signature' })
  })

  it('rejects a frame whose signer is not the connection\'s remote peer, unless forwarded', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const other = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier()
    assert.deepEqual(verifier.verify(signer.sign('raft', payload), { remotePeer: other.peerId }), { ok: false, reason: 'wrong-sender' })
    assert.equal(verifier.verify(signer.sign('code', payload), { remotePeer: other.peerId, forwarded: true }).ok, true)
  })

  it('rejects replays', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier()
    const bytes = signer.sign('raft', payload)
    assert.equal(verifier.verify(bytes).ok, true)
    assert.deepEqual(verifier.verify(bytes), { ok: false, reason: 'replayed' })
    assert.equal(verifier.counts().replayed, 1)
  })

  it('rejects sequence numbers below the window', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier({ replayWindow: 32 })
    const old = signer.sign('raft', payload)
    for (let i = 0; i < 40; i++) assert.equal(verifier.verify(signer.sign('raft', payload)).ok, true)
    assert.deepEqual(verifier.verify(old), { ok: false, reason: 'too-old' })
  })

  it('rejects stale and future timestamps', async () => {
    const key = await createEd25519Key()
    let clock = 1_000_000
    const verifier = createFrameVerifier({ windowMs: 10_000, maxSkewMs: 1_000, now: () => clock })
    const signer = createFrameSigner(key, { now: () => clock })
    const bytes = signer.sign('raft', payload)
    clock += 10_001
    assert.deepEqual(verifier.verify(bytes), { ok: false, reason: 'stale' })
    clock -= 20_000
    assert.deepEqual(verifier.verify(bytes), { ok: false, reason: 'future' })
    clock += 10_000
    assert.equal(verifier.verify(bytes).ok, true)
  })

  it('rejects oversized, unsigned, empty, garbage, wrong-kind frames and bad sender keys', async () => {
    const key = await createEd25519Key()
    const signer = createFrameSigner(key)
    const verifier = createFrameVerifier({ maxBytes: 200 })
    assert.deepEqual(verifier.verify(signer.sign('raft', new Uint8Array(300))), { ok: false, reason: 'oversized' })
    const frame = Frame.decode(signer.sign('raft', payload))
    assert.deepEqual(verifier.verify(Frame.encode({ ...frame, signature: new Uint8Array(0) })), { ok: false, reason: 'unsigned' })
    assert.deepEqual(verifier.verify(Frame.encode({ ...frame, raft: undefined })), { ok: false, reason: 'no-payload' })
    assert.deepEqual(verifier.verify(new Uint8Array([0xff, 0xff, 0xff])), { ok: false, reason: 'malformed' })
    assert.deepEqual(verifier.verify(signer.sign('cell', payload), { expect: 'raft' }), { ok: false, reason: 'wrong-kind' })
    assert.deepEqual(verifier.verify(Frame.encode({ ...frame, sender: new Uint8Array([8, 1, 18, 3, 1, 2, 3]) })), { ok: false, reason: 'bad-sender-key' })
    const counts = verifier.counts()
    for (const r of ['oversized', 'unsigned', 'no-payload', 'malformed', 'wrong-kind', 'bad-sender-key'] as const) assert.equal(counts[r], 1, r)
    assert.equal(verifier.rejected(), 6)
  })

  it('a frame with an extra unknown or duplicated field fails verification', async () => {
    const signer = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier()
    const bytes = signer.sign('raft', payload)
    const withUnknown = new Uint8Array([...bytes, 0xa0, 0x01, 0x01]) // field 20, varint 1
    assert.deepEqual(verifier.verify(withUnknown), { ok: false, reason: 'non-canonical' })
    const withSecondPayload = new Uint8Array([0x5a, 0x01, 0x00, ...bytes]) // a raft field the decoder overwrites
    assert.deepEqual(verifier.verify(withSecondPayload), { ok: false, reason: 'non-canonical' })
    assert.equal(verifier.verify(bytes).ok, true)
  })

  it('fuzz: 100,000 random and mutated frames never throw and never verify', async function () {
    this.timeout(120_000)
    const signer = createFrameSigner(await createEd25519Key())
    const verifier = createFrameVerifier({ maxBytes: 4096 })
    const seeds = [signer.sign('raft', payload), signer.sign('capacity', new Uint8Array(100)), signer.sign('cell', new Uint8Array(0))]
    let x = 0x9e3779b9
    const rand = (n: number): number => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n }
    for (const seed of seeds) assert.equal(verifier.verify(seed).ok, true) // so identical copies are replays
    let accepted = 0
    for (let i = 0; i < 100_000; i++) {
      let bytes: Uint8Array
      if (i % 4 === 0) {
        bytes = new Uint8Array(rand(300))
        for (let j = 0; j < bytes.length; j++) bytes[j] = rand(256)
      } else {
        const seed = seeds[rand(seeds.length)]
        bytes = new Uint8Array(seed)
        const flips = 1 + rand(4)
        for (let j = 0; j < flips; j++) {
          const op = rand(3)
          if (op === 0) bytes[rand(bytes.length)] ^= 1 << rand(8)
          else if (op === 1) bytes = bytes.subarray(0, rand(bytes.length))
          else bytes[rand(bytes.length)] = rand(256)
        }
      }
      const result = verifier.verify(bytes)
      if (result.ok) accepted++
    }
    assert.equal(accepted, 0)
    assert.equal(verifier.rejected(), 100_000)
  })
})
