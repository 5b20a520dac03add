// Wire encoding of forwarded owner requests and their answers (owner.proto). Decoding
// refuses oversized, truncated or malformed bytes with a one-line reason. The owner's
// signature is not checked here: the member that receives the request verifies it like
// any request from its own control API (openOwnerRequest).
import { OwnerAnswer as WireAnswer, OwnerForward } from '../wire/proto/owner.js'
import { MAX_OWNER_REQUEST_CHARS } from './owner-request.js'
import type { SignedOwnerRequest } from './owner-request.js'

/** a request of MAX_OWNER_REQUEST_CHARS UTF-16 units is at most 3 bytes each in UTF-8, plus key and signature */
export const MAX_FORWARD_BYTES = MAX_OWNER_REQUEST_CHARS * 3 + 1024
export const MAX_ANSWER_BYTES = 1024
const MAX_ERROR_CHARS = 300

export interface OwnerAnswer {
  ok: boolean
  error: string
  changed: boolean
  /** the receiver is not in the app's group: the forwarder asks another member */
  notMember: boolean
}

export function encodeOwnerForward (signed: SignedOwnerRequest): Uint8Array {
  return OwnerForward.encode({ request: signed.request, owner: signed.owner, signature: signed.signature })
}

export function decodeOwnerForward (bytes: Uint8Array): SignedOwnerRequest {
  if (bytes.byteLength > MAX_FORWARD_BYTES) throw new Error(`invalid forwarded owner request: ${bytes.byteLength} bytes (at most ${MAX_FORWARD_BYTES})`)
  let wire: OwnerForward
  try {
    wire = OwnerForward.decode(bytes)
  } catch (err) {
    throw new Error(`invalid forwarded owner request: ${(err as Error).message.split('\n')[0]}`)
  }
  if (wire.request === '' || wire.owner === '' || wire.signature === '') throw new Error('invalid forwarded owner request: needs request, owner and signature')
  if (wire.request.length > MAX_OWNER_REQUEST_CHARS) throw new Error(`invalid forwarded owner request: request over ${MAX_OWNER_REQUEST_CHARS} characters`)
  return { request: wire.request, owner: wire.owner, signature: wire.signature }
}

export function encodeOwnerAnswer (answer: OwnerAnswer): Uint8Array {
  return WireAnswer.encode({ ...answer, error: answer.error.split('\n')[0].slice(0, MAX_ERROR_CHARS) })
}

export function decodeOwnerAnswer (bytes: Uint8Array): OwnerAnswer {
  if (bytes.byteLength > MAX_ANSWER_BYTES) throw new Error(`invalid owner answer: ${bytes.byteLength} bytes (at most ${MAX_ANSWER_BYTES})`)
  let wire: WireAnswer
  try {
    wire = WireAnswer.decode(bytes)
  } catch (err) {
    throw new Error(`invalid owner answer: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!wire.ok && wire.error === '' && !wire.notMember) throw new Error('invalid owner answer: a refusal without a reason')
  return { ok: wire.ok, error: wire.error.split('\n')[0].slice(0, MAX_ERROR_CHARS), changed: wire.changed, notMember: wire.notMember }
}
