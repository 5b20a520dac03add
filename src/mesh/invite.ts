// Invite tokens: one line that carries everything needed to join a mesh.
//   stem1<base58btc( Invite protobuf ++ first 4 bytes of sha256(Invite protobuf) )>
// `stem` names the thing, `1` the format version (one digit); the checksum turns a truncated or
// mistyped token into a clear error instead of a confusing decode failure.
import { createHash } from 'node:crypto'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { Invite as InviteMessage } from '../wire/proto/invite.js'
import { MESH_KEY_LENGTH, meshNameProblem } from './mesh-config.js'

export const INVITE_PREFIX = 'stem'
export const INVITE_VERSION = 1
const CHECKSUM_LENGTH = 4
const MAX_TOKEN_LENGTH = 8192

export interface Invite {
  mesh: string
  key: Uint8Array
  /** multiaddrs ending in /p2p/<peer id> */
  bootstrap: Multiaddr[]
}

/** A token that cannot be used; the message is one line saying what is wrong. */
export class InviteError extends Error {
  override name = 'InviteError'
}

function checksum (bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest().subarray(0, CHECKSUM_LENGTH))
}

export function encodeInvite (invite: Invite): string {
  const problem = validate(invite)
  if (problem != null) throw new InviteError(problem)
  const body = InviteMessage.encode({ mesh: invite.mesh, key: new Uint8Array(invite.key), bootstrap: invite.bootstrap.map(a => new Uint8Array(a.bytes)) })
  const bytes = new Uint8Array(body.length + CHECKSUM_LENGTH)
  bytes.set(body)
  bytes.set(checksum(body), body.length)
  return `${INVITE_PREFIX}${INVITE_VERSION}${uint8ArrayToString(bytes, 'base58btc')}`
}

export function decodeInvite (token: string): Invite {
  const text = token.trim()
  if (text === '') throw new InviteError('invite token is empty')
  if (text.length > MAX_TOKEN_LENGTH) throw new InviteError(`invite token is too long (${text.length} characters, at most ${MAX_TOKEN_LENGTH})`)
  if (!text.startsWith(INVITE_PREFIX)) throw new InviteError(`not a Stem invite token: it must start with "${INVITE_PREFIX}${INVITE_VERSION}"`)
  // the version is one digit: base58 text may itself start with digits
  const version = /^\d/.exec(text.slice(INVITE_PREFIX.length))?.[0]
  if (version == null) throw new InviteError(`not a Stem invite token: "${INVITE_PREFIX}" must be followed by a version number`)
  if (Number(version) !== INVITE_VERSION) throw new InviteError(`unsupported invite token version ${version} (this stem reads version ${INVITE_VERSION})`)
  const encoded = text.slice(INVITE_PREFIX.length + version.length)
  const bad = /[^1-9A-HJ-NP-Za-km-z]/.exec(encoded)
  if (bad != null) throw new InviteError(`invite token contains ${JSON.stringify(bad[0])} at position ${INVITE_PREFIX.length + version.length + bad.index + 1}, which is not base58`)
  const bytes = uint8ArrayFromString(encoded, 'base58btc')
  if (bytes.length <= CHECKSUM_LENGTH) throw new InviteError('invite token is truncated')
  const body = bytes.subarray(0, bytes.length - CHECKSUM_LENGTH)
  if (Buffer.compare(checksum(body), bytes.subarray(body.length)) !== 0) throw new InviteError('invite token is truncated or mistyped (checksum mismatch)')
  let message: InviteMessage
  try {
    message = InviteMessage.decode(body)
  } catch (err) {
    throw new InviteError(`invite token payload is malformed: ${(err as Error).message}`)
  }
  const bootstrap: Multiaddr[] = []
  for (const [i, raw] of message.bootstrap.entries()) {
    try {
      bootstrap.push(multiaddr(raw))
    } catch (err) {
      throw new InviteError(`invite bootstrap address ${i + 1} is invalid: ${(err as Error).message}`)
    }
  }
  const invite = { mesh: message.mesh, key: message.key, bootstrap }
  const problem = validate(invite)
  if (problem != null) throw new InviteError(problem)
  return invite
}

function validate (invite: Invite): string | undefined {
  const nameProblem = meshNameProblem(invite.mesh)
  if (nameProblem != null) return `invite ${nameProblem}`
  if (invite.key.length !== MESH_KEY_LENGTH) return `invite mesh key is ${invite.key.length} bytes, expected ${MESH_KEY_LENGTH}`
  if (invite.bootstrap.length === 0) return 'invite has no bootstrap addresses'
  for (const [i, addr] of invite.bootstrap.entries()) {
    if (addr.getComponents().findLast(c => c.name === 'p2p') == null) return `invite bootstrap address ${i + 1} (${addr.toString()}) has no /p2p/<peer id>`
  }
  return undefined
}
