// Owner keys that travel: the key file format (malformed, truncated, oversized, forged,
// wrong-type input) and `stem owner export/import` through the real CLI.
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createEd25519Key, encodePrivateKey, peerIdOf } from '../../src/wire/keys.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { decodeOwnerKeyFile, encodeOwnerKeyFile } from '../../src/cli/owner.js'
import { stem, tempDataDir } from '../support/stem-process.js'

describe('cli: owner key files', function () {
  this.timeout(120_000)

  it('round-trips a key and refuses malformed, truncated, oversized, forged and wrong-type files', async () => {
    const key = await createEd25519Key()
    const text = encodeOwnerKeyFile(key)
    assert.equal(peerIdOf(decodeOwnerKeyFile(text).publicKey), peerIdOf(key.publicKey))
    const o = JSON.parse(text) as { kind: string, owner: string, key: string }
    const other = await createEd25519Key()
    const secp = await generateKeyPair('secp256k1')
    const bad: Array<[string, RegExp]> = [
      ['', /not JSON/],
      [text.slice(0, text.length / 2), /not JSON/],
      [Buffer.from(encodePrivateKey(key)).toString('latin1'), /not JSON/],
      ['x'.repeat(100_000), /not an owner key file \(100000 bytes\)/],
      ['null', /kind/],
      [JSON.stringify({ ...o, kind: 'stem-node-key/1' }), /kind/],
      [JSON.stringify({ ...o, key: 42 }), /base64/],
      [JSON.stringify({ ...o, key: 'not base64!' }), /base64/],
      [JSON.stringify({ ...o, key: o.key.slice(0, 20) }), /invalid key/],
      [JSON.stringify({ ...o, key: Buffer.from(privateKeyToProtobuf(secp)).toString('base64') }), /invalid key: expected an Ed25519 key/],
      // a key whose claimed owner is someone else: forged or mixed up
      [JSON.stringify({ ...o, owner: peerIdOf(other.publicKey) }), /does not match/]
    ]
    for (const [input, error] of bad) assert.throws(() => decodeOwnerKeyFile(input), error, input.slice(0, 60))
  })

  it('export writes a 0600 file with a warning; import refuses bad files and another owner unless --force', async () => {
    const a = await tempDataDir()
    const b = await tempDataDir()
    const file = join(a, 'exported.key')
    const exported = await stem(['owner', 'export', file, '--data', a])
    assert.equal(exported.code, 0, exported.stderr)
    assert.match(exported.stderr, /secret/)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const owner = (JSON.parse(await readFile(file, 'utf8')) as { owner: string }).owner
    assert.match(exported.stdout, new RegExp(owner))
    // not over an existing file without --force
    const again = await stem(['owner', 'export', file, '--data', a])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /exists; pass --force/)
    // to stdout: the same key
    const out = await stem(['owner', 'export', '--data', a])
    assert.equal(out.code, 0, out.stderr)
    assert.equal(out.stdout, await readFile(file, 'utf8'))

    // a malformed file: one line naming it, nothing written
    const junk = join(b, 'junk.key')
    await writeFile(junk, 'hello')
    const refused = await stem(['owner', 'import', junk, '--data', b])
    assert.equal(refused.code, 1)
    assert.equal(refused.stderr.trim().split('\n').length, 1)
    assert.match(refused.stderr, new RegExp(`${junk}: not an owner key file`))
    await assert.rejects(stat(join(b, 'owner.key')))

    // b has an owner of its own: import refuses to replace it, then does with --force
    assert.equal((await stem(['owner', 'export', join(b, 'b.key'), '--data', b])).code, 0)
    const before = await readFile(join(b, 'owner.key'))
    const clash = await stem(['owner', 'import', file, '--data', b])
    assert.equal(clash.code, 1)
    assert.match(clash.stderr, /holds another owner .*--force/)
    assert.deepEqual(await readFile(join(b, 'owner.key')), before)
    const forced = await stem(['owner', 'import', file, '--data', b, '--force'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.equal((await stat(join(b, 'owner.key'))).mode & 0o777, 0o600)
    assert.deepEqual(await readFile(join(b, 'owner.key')), await readFile(join(a, 'owner.key')))
    // importing the same owner again changes nothing and succeeds
    const same = await stem(['owner', 'import', file, '--data', b])
    assert.equal(same.code, 0, same.stderr)
    assert.match(same.stdout, /already/)
  })

  it('publish --owner-key refuses a bad key file before contacting any node', async () => {
    const dir = await tempDataDir()
    const junk = join(dir, 'junk.key')
    await writeFile(junk, '{"kind":"stem-owner-key/1"}')
    const r = await stem(['publish', 'examples/counter/app.yaml', '--owner-key', junk, '--data', dir])
    assert.equal(r.code, 1)
    assert.match(r.stderr, new RegExp(`^stem: ${junk}: owner key file without a base64 "key"\\n$`))
  })
})
