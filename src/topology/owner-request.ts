// Requests only an app's owner may make (publish, scale, revert), signed with the owner
// key (`owner.key` in the data dir of the publishing user, separate from node identities).
// The signature covers the exact JSON text of the request; the node that receives it
// verifies it before anything is proposed, and the app state machine then checks that
// the key is the app's owner and that the request is newer than the last one (no replay).
import { decodePublicKey, encodePublicKey, peerIdOf, signBytes, verifyBytes } from '../wire/keys.js'
import type { PrivateKey } from '../wire/keys.js'
import type { AppManifest } from './manifest.js'
import { parseBoundedJson } from '../util/bounded-json.js'

export type OwnerRequest =
  | { op: 'publish', app: string, at: number, manifest: AppManifest }
  | { op: 'scale', app: string, at: number, cell: string, replicas: number }
  | { op: 'revert', app: string, at: number, cell?: string }
  /**
   * restart the app's (or the cell's) failed instances from their last good state; with
   * `acceptLoss`, also start its `lost` ones from the newest copy found (or blank), giving up
   * what the nodes still away may hold (recovery.ts)
   */
  | { op: 'restart', app: string, at: number, cell?: string, acceptLoss?: boolean }

export interface SignedOwnerRequest {
  /** JSON text of an OwnerRequest */
  request: string
  /** protobuf-encoded Ed25519 public key of the owner, base64 */
  owner: string
  /** Ed25519 signature of `request`'s UTF-8 bytes, base64 */
  signature: string
}

export interface OpenedOwnerRequest {
  request: OwnerRequest
  /** peer id of the owner key */
  owner: string
  /** base64 of the protobuf-encoded owner key */
  ownerKey: string
  /** the verified request as signed (for forwarding it to the app's group) */
  signed: SignedOwnerRequest
}

export const MAX_OWNER_REQUEST_CHARS = 256 * 1024

/** an accept-loss gives up acknowledged state: a signed one is carried out only this close to the node's clock */
export const ACCEPT_LOSS_WINDOW_MS = 5 * 60_000

/**
 * Throws unless a restart with `acceptLoss` may be carried out at `now`: its owner clock is
 * within ACCEPT_LOSS_WINDOW_MS of the node's, and later than the last one this leader
 * carried out for the app (`lastAt`). A member that once forwarded it cannot replay it in a
 * later outage: past the window it is refused by any leader, and within it by this one.
 */
export function checkAcceptLoss (at: number, now: number, lastAt: number | undefined): void {
  const skew = Math.abs(now - at)
  if (skew > ACCEPT_LOSS_WINDOW_MS) throw new Error(`owner request refused: an accept-loss must be signed within ${ACCEPT_LOSS_WINDOW_MS / 60_000} min of this node's clock, this one is ${Math.round(skew / 1000)} s off`)
  if (lastAt !== undefined && at <= lastAt) throw new Error('owner request refused: replayed (an accept-loss signed as late or later was carried out already)')
}

export async function signOwnerRequest (key: PrivateKey, request: OwnerRequest): Promise<SignedOwnerRequest> {
  const text = JSON.stringify(request)
  const signature = await signBytes(key, new TextEncoder().encode(text))
  return { request: text, owner: Buffer.from(encodePublicKey(key.publicKey)).toString('base64'), signature: Buffer.from(signature).toString('base64') }
}

/** Verifies and decodes a signed owner request; throws a one-line error naming what is wrong. */
export async function openOwnerRequest (signed: unknown): Promise<OpenedOwnerRequest> {
  const s = signed as Partial<SignedOwnerRequest> | null
  if (s === null || typeof s !== 'object') throw new Error('invalid owner request: expected { request, owner, signature }')
  if (typeof s.request !== 'string' || s.request.length > MAX_OWNER_REQUEST_CHARS) throw new Error(`invalid owner request: field request must be JSON text of at most ${MAX_OWNER_REQUEST_CHARS} characters`)
  if (typeof s.owner !== 'string' || typeof s.signature !== 'string') throw new Error('invalid owner request: fields owner and signature must be base64 strings')
  let key
  try {
    key = decodePublicKey(Buffer.from(s.owner, 'base64'))
  } catch {
    throw new Error('invalid owner request: owner is not an Ed25519 public key')
  }
  const ok = await verifyBytes(key, new TextEncoder().encode(s.request), Buffer.from(s.signature, 'base64')).catch(() => false)
  if (!ok) throw new Error('invalid owner request: bad signature')
  let request: OwnerRequest
  try {
    request = parseBoundedJson(s.request, 'request') as OwnerRequest
  } catch (err) {
    throw new Error(`invalid owner request: ${(err as Error).message}`)
  }
  if (request === null || typeof request !== 'object' || typeof request.app !== 'string' || !Number.isSafeInteger(request.at)) throw new Error('invalid owner request: needs app and at')
  if (request.op === 'publish') {
    if (typeof request.manifest !== 'object' || request.manifest === null || request.manifest.app !== request.app) throw new Error('invalid owner request: publish needs the manifest of the app')
  } else if (request.op === 'scale') {
    if (typeof request.cell !== 'string' || !Number.isSafeInteger(request.replicas)) throw new Error('invalid owner request: scale needs cell and replicas')
  } else if (request.op === 'revert' || request.op === 'restart') {
    if (request.cell !== undefined && typeof request.cell !== 'string') throw new Error(`invalid owner request: ${request.op} cell must be a string`)
    if (request.op === 'restart' && request.acceptLoss !== undefined && typeof request.acceptLoss !== 'boolean') throw new Error('invalid owner request: restart acceptLoss must be true or false')
  } else {
    throw new Error(`invalid owner request: unknown op ${JSON.stringify((request as { op?: unknown }).op)}`)
  }
  return { request, owner: peerIdOf(key), ownerKey: Buffer.from(encodePublicKey(key)).toString('base64'), signed: { request: s.request, owner: s.owner, signature: s.signature } }
}
