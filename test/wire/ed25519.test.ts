import assert from 'node:assert/strict'
import { ed25519, nodeBackend, sodiumBackend } from '../../src/wire/ed25519.js'
import type { Ed25519Backend } from '../../src/wire/ed25519.js'
import { createEd25519Key, createSyncSigner, createSyncVerifier, signBytes, verifyBytes } from '../../src/wire/keys.js'

describe('wire/ed25519 (hot-path signatures)', () => {
  const backends: Ed25519Backend[] = sodiumBackend !== undefined ? [sodiumBackend, nodeBackend] : [nodeBackend]

  it('uses libsodium where its prebuilt addon exists', () => {
    if (process.platform === 'linux' && process.arch === 'x64') assert.equal(ed25519.name, 'sodium')
    else assert.ok(ed25519 === nodeBackend || ed25519 === sodiumBackend)
  })

  it('every backend accepts the signatures of every other one, and of libp2p keys', async () => {
    const key = await createEd25519Key()
    const seed = key.raw.subarray(0, 32)
    const data = new TextEncoder().encode('a frame, more or less')
    for (const signing of backends) {
      const signature = signing.signer(seed, key.publicKey.raw)(data)
      assert.equal(signature.byteLength, 64)
      // Ed25519 is deterministic: the same bytes as libp2p's own signing
      assert.deepEqual(new Uint8Array(signature), new Uint8Array(await signBytes(key, data)))
      assert.equal(await verifyBytes(key.publicKey, data, signature), true)
      for (const verifying of backends) assert.equal(verifying.verifier(key.publicKey.raw)(data, signature), true, `${signing.name} → ${verifying.name}`)
    }
  })

  it('rejects tampered data, a foreign key and malformed signatures without throwing', async () => {
    const key = await createEd25519Key()
    const other = await createEd25519Key()
    const data = new TextEncoder().encode('hello')
    const signature = createSyncSigner(key)(data)
    for (const backend of backends) {
      const verify = backend.verifier(key.publicKey.raw)
      assert.equal(verify(new TextEncoder().encode('hellp'), signature), false, backend.name)
      assert.equal(backend.verifier(other.publicKey.raw)(data, signature), false, backend.name)
      const flipped = new Uint8Array(signature)
      flipped[10] ^= 1
      assert.equal(verify(data, flipped), false, backend.name)
      assert.equal(verify(data, signature.subarray(0, 63)), false, backend.name)
      // a longer one is not its first 64 bytes
      assert.equal(verify(data, Buffer.concat([signature, Buffer.from([0])])), false, backend.name)
      assert.equal(verify(data, new Uint8Array(0)), false, backend.name)
      // S ≥ L (non-canonical) and an all-zero signature
      assert.equal(verify(data, new Uint8Array(64).fill(0xff)), false, backend.name)
      assert.equal(verify(data, new Uint8Array(64)), false, backend.name)
    }
    assert.equal(createSyncVerifier(key.publicKey)(data, signature), true)
  })

  it('refuses keys of the wrong length with a one-line error', () => {
    for (const backend of backends) {
      assert.throws(() => backend.verifier(new Uint8Array(31)), /32 bytes, got 31/)
      assert.throws(() => backend.signer(new Uint8Array(32), new Uint8Array(33)), /32 bytes, got 33/)
    }
  })
})
