import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { decodeInvite, encodeInvite, InviteError } from '../../src/mesh/invite.js'
import { generateMeshKey } from '../../src/mesh/mesh-config.js'
import { Invite as InviteMessage } from '../../src/wire/proto/invite.js'
import { createHash } from 'node:crypto'

const peer = '12D3KooWQhaq1cYjdaSUsuasyei698FAoBXWcvseKrzKYHFGpGBx'
const bootstrap = [multiaddr(`/ip4/192.168.1.10/tcp/4017/p2p/${peer}`), multiaddr(`/ip4/127.0.0.1/tcp/4017/p2p/${peer}`)]

/** a token with a valid checksum around an arbitrary body, to reach the checks after it */
function tokenOf (body: Uint8Array): string {
  const sum = createHash('sha256').update(body).digest().subarray(0, 4)
  return 'stem1' + uint8ArrayToString(new Uint8Array([...body, ...sum]), 'base58btc')
}

function rejects (token: string, pattern: RegExp): void {
  assert.throws(() => decodeInvite(token), (err: Error) => {
    assert.ok(err instanceof InviteError, `expected an InviteError, got ${err.name}`)
    assert.match(err.message, pattern)
    assert.ok(!err.message.includes('\n'), 'one line')
    return true
  })
}

describe('mesh/invite', () => {
  it('round-trips mesh name, key and bootstrap addresses', () => {
    const key = generateMeshKey()
    const token = encodeInvite({ mesh: 'home', key, bootstrap })
    assert.match(token, /^stem1[1-9A-HJ-NP-Za-km-z]+$/)
    const invite = decodeInvite(`  ${token}\n`)
    assert.equal(invite.mesh, 'home')
    assert.deepEqual(invite.key, key)
    assert.deepEqual(invite.bootstrap.map(a => a.toString()), bootstrap.map(a => a.toString()))
  })

  it('refuses empty, foreign, wrong-version and non-base58 tokens with specific one-line errors', () => {
    const token = encodeInvite({ mesh: 'home', key: generateMeshKey(), bootstrap })
    rejects('', /empty/)
    rejects('hello', /not a Stem invite token/)
    rejects('stemX' + token.slice(5), /must be followed by a version/)
    rejects('stem2' + token.slice(5), /unsupported invite token version 2/)
    rejects(token.slice(0, 20) + '0' + token.slice(21), /"0" at position 21, which is not base58/)
  })

  it('detects truncated and mistyped tokens', () => {
    const token = encodeInvite({ mesh: 'home', key: generateMeshKey(), bootstrap })
    rejects(token.slice(0, -3), /truncated or mistyped/)
    rejects(token.slice(0, 7), /truncated/)
    const swapped = token.slice(0, 30) + (token[30] === 'a' ? 'b' : 'a') + token.slice(31)
    rejects(swapped, /checksum mismatch/)
  })

  it('refuses bad key lengths, bad names, missing bootstrap and addresses without a peer id', () => {
    const key = generateMeshKey()
    const raw = (fields: Partial<InviteMessage>): string => tokenOf(InviteMessage.encode({ mesh: 'home', key: new Uint8Array(key), bootstrap: bootstrap.map(a => new Uint8Array(a.bytes)), ...fields }))
    rejects(raw({ key: new Uint8Array(key.subarray(0, 16)) }), /mesh key is 16 bytes, expected 32/)
    rejects(raw({ mesh: 'Bad Name!' }), /mesh name "Bad Name!" is invalid/)
    rejects(raw({ bootstrap: [] }), /no bootstrap addresses/)
    rejects(raw({ bootstrap: [new Uint8Array(multiaddr('/ip4/1.2.3.4/tcp/1').bytes)] }), /has no \/p2p\/<peer id>/)
    rejects(raw({ bootstrap: [new Uint8Array([0xff, 0xff, 0xff])] }), /bootstrap address 1 is invalid/)
    rejects(tokenOf(new Uint8Array([0xff, 0xff, 0xff, 0xff])), /malformed/)
    assert.throws(() => encodeInvite({ mesh: 'home', key, bootstrap: [] }), /no bootstrap addresses/)
  })
})
