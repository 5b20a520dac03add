import assert from 'node:assert/strict'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEd25519Key, decodePublicKey, encodePublicKey, loadOrCreateKey, peerIdOf, signBytes, verifyBytes } from '../../src/wire/keys.js'

describe('wire/keys', () => {
  it('signs and verifies, and rejects a tampered message or a foreign key', async () => {
    const key = await createEd25519Key()
    const other = await createEd25519Key()
    const data = new TextEncoder().encode('hello')
    const sig = await signBytes(key, data)
    assert.equal(await verifyBytes(key.publicKey, data, sig), true)
    assert.equal(await verifyBytes(key.publicKey, new TextEncoder().encode('hellp'), sig), false)
    assert.equal(await verifyBytes(other.publicKey, data, sig), false)
    assert.equal(await verifyBytes(key.publicKey, data, sig.subarray(1)), false)
  })

  it('round-trips public keys and refuses garbage with a one-line error', async () => {
    const key = await createEd25519Key()
    const decoded = decodePublicKey(encodePublicKey(key.publicKey))
    assert.equal(peerIdOf(decoded), peerIdOf(key.publicKey))
    assert.throws(() => decodePublicKey(new Uint8Array([1, 2, 3])), /invalid public key/)
  })

  it('creates a key once with mode 0600 and reuses it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-keys-'))
    const path = join(dir, 'identity.key')
    const a = await loadOrCreateKey(path)
    const b = await loadOrCreateKey(path)
    assert.equal(peerIdOf(a.publicKey), peerIdOf(b.publicKey))
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.ok((await readFile(path)).length > 0)
  })

  it('refuses a corrupt key file instead of replacing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-keys-'))
    const path = join(dir, 'identity.key')
    await writeFile(path, 'not a key')
    await assert.rejects(loadOrCreateKey(path), /is corrupt/)
    assert.equal(await readFile(path, 'utf8'), 'not a key')
  })
})
