// Bundles: a cell's code as one ESM module, content-addressed, carrying its manifest
// metadata and signed by the app owner (SPEC §2). The address is the sha256 of the code
// *with* the owner key, app and cell it was built for: the same code in two cells, two
// apps or two owners' apps makes two bundles, so a node's store (keyed by address) never
// hands one cell another cell's bundle, nor one owner's app another owner's.
// The wire form is bundle.proto's Bundle; the signature covers the encoded body as sent.
import { createHash } from 'node:crypto'
import { Bundle as BundleMessage, BundleBody } from '../wire/proto/bundle.js'
import { decodePublicKey, encodePublicKey, peerIdOf, signBytes, verifyBytes } from '../wire/keys.js'
import type { PrivateKey, PublicKey } from '../wire/keys.js'
import { checkLimits } from './limits.js'
import type { CellLimits } from './limits.js'

/** Largest encoded bundle accepted from the wire. */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/i

export interface CellBundle {
  app: string
  cell: string
  /** file the code was built from */
  entry: string
  /** the ESM module */
  code: string
  /** hex bundleAddress of the code, owner, app and cell: the bundle's content address */
  hash: string
  limits: CellLimits
  created: number
  /** protobuf-encoded Ed25519 public key of the owner */
  owner: Uint8Array
  /** owner's signature over `body` */
  signature: Uint8Array
  /** the encoded BundleBody the signature covers */
  body: Uint8Array
}

export interface BundleInit {
  app: string
  cell: string
  entry: string
  code: string
  limits: CellLimits
  created?: number
}

/** The content address of `code` built for `app/cell` of `owner` (protobuf-encoded public key). */
export function bundleAddress (owner: Uint8Array, app: string, cell: string, code: Uint8Array): Uint8Array<ArrayBuffer> {
  const text = (s: string): Uint8Array => new TextEncoder().encode(s)
  const length = (n: number): Uint8Array => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
  const hash = createHash('sha256').update(text('stem-bundle/1'))
  // length-prefixed, so no two (owner, app, cell, code) tuples hash the same bytes
  for (const part of [owner, text(app), text(cell), code]) hash.update(length(part.byteLength)).update(part)
  return new Uint8Array(hash.digest())
}

/** Sign code and its metadata with the owner key. */
export async function signBundle (init: BundleInit, owner: PrivateKey): Promise<CellBundle> {
  checkName(init.app, 'app')
  checkName(init.cell, 'cell')
  const limits = checkLimits(init.limits)
  const codeBytes = new TextEncoder().encode(init.code)
  const ownerKey = encodePublicKey(owner.publicKey)
  const hash = bundleAddress(ownerKey, init.app, init.cell, codeBytes)
  const created = init.created ?? Date.now()
  const body = BundleBody.encode({
    app: init.app,
    cell: init.cell,
    entry: init.entry,
    code: codeBytes,
    hash,
    limits: { memory: BigInt(limits.memory), timeout: limits.timeout, mailbox: limits.mailbox },
    created: BigInt(created)
  })
  return {
    app: init.app,
    cell: init.cell,
    entry: init.entry,
    code: init.code,
    hash: Buffer.from(hash).toString('hex'),
    limits,
    created,
    owner: ownerKey,
    signature: await signBytes(owner, body),
    body
  }
}

export function encodeBundle (bundle: CellBundle): Uint8Array {
  // protons types its bytes fields as Uint8Array<ArrayBuffer>; ours may view any buffer.
  const bytes = (b: Uint8Array): Uint8Array<ArrayBuffer> => b as Uint8Array<ArrayBuffer>
  return BundleMessage.encode({ body: bytes(bundle.body), owner: bytes(bundle.owner), signature: bytes(bundle.signature) })
}

/**
 * Decode a bundle from the wire. Checks structure only (size, fields, hash of the code);
 * the signature and owner are checked by verifyBundle. Throws a one-line error.
 */
export function decodeBundle (bytes: Uint8Array): CellBundle {
  if (bytes.byteLength > MAX_BUNDLE_BYTES) throw new Error(`bundle too large: ${bytes.byteLength} bytes, limit ${MAX_BUNDLE_BYTES}`)
  let outer: BundleMessage
  try {
    outer = BundleMessage.decode(bytes)
  } catch (err) {
    throw new Error(`malformed bundle: ${(err as Error).message}`)
  }
  if (outer.owner.byteLength === 0) throw new Error('malformed bundle: missing owner key')
  if (outer.signature.byteLength === 0) throw new Error('malformed bundle: missing signature')
  return bundleFromBody(outer.body, outer.owner, outer.signature)
}

function bundleFromBody (body: Uint8Array, owner: Uint8Array, signature: Uint8Array): CellBundle {
  let inner: BundleBody
  try {
    inner = BundleBody.decode(body)
  } catch (err) {
    throw new Error(`malformed bundle body: ${(err as Error).message}`)
  }
  checkName(inner.app, 'app')
  checkName(inner.cell, 'cell')
  if (inner.code.byteLength === 0) throw new Error('malformed bundle: empty code')
  if (inner.limits == null) throw new Error('malformed bundle: missing limits')
  if (inner.hash.byteLength !== 32) throw new Error('malformed bundle: hash is not a sha256')
  const hash = Buffer.from(inner.hash).toString('hex')
  if (Buffer.from(bundleAddress(owner, inner.app, inner.cell, inner.code)).toString('hex') !== hash) throw new Error(`bundle ${inner.app}/${inner.cell}: code does not match its hash`)
  let code: string
  try {
    code = new TextDecoder('utf-8', { fatal: true }).decode(inner.code)
  } catch {
    throw new Error(`bundle ${inner.app}/${inner.cell}: code is not UTF-8`)
  }
  const memory = inner.limits.memory > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(inner.limits.memory)
  let limits: CellLimits
  try {
    limits = checkLimits({ memory, timeout: inner.limits.timeout, mailbox: inner.limits.mailbox })
  } catch (err) {
    throw new Error(`bundle ${inner.app}/${inner.cell}: ${(err as Error).message}`)
  }
  return { app: inner.app, cell: inner.cell, entry: inner.entry, code, hash, limits, created: Number(inner.created), owner, signature, body }
}

/**
 * Refuse a bundle unless its body decodes, its code matches its hash, its fields are
 * the body's, it is signed by its owner key, and that key is the app's owner.
 * Throws a one-line error naming what failed.
 */
export async function verifyBundle (bundle: CellBundle, expectedOwner: PublicKey | Uint8Array): Promise<void> {
  const fromBody = bundleFromBody(bundle.body, bundle.owner, bundle.signature)
  const name = `${fromBody.app}/${fromBody.cell}`
  if (fromBody.code !== bundle.code || fromBody.hash !== bundle.hash || fromBody.app !== bundle.app || fromBody.cell !== bundle.cell ||
    fromBody.limits.memory !== bundle.limits.memory || fromBody.limits.timeout !== bundle.limits.timeout || fromBody.limits.mailbox !== bundle.limits.mailbox) {
    throw new Error(`bundle ${name}: fields do not match its signed body`)
  }
  let signer: PublicKey
  try {
    signer = decodePublicKey(bundle.owner)
  } catch (err) {
    throw new Error(`bundle ${name}: ${(err as Error).message}`)
  }
  if (!await verifyBytes(signer, bundle.body, bundle.signature)) throw new Error(`bundle ${name}: bad signature`)
  const expected = expectedOwner instanceof Uint8Array ? decodePublicKey(expectedOwner) : expectedOwner
  if (!signer.equals(expected)) throw new Error(`bundle ${name}: signed by ${peerIdOf(signer)}, not by the app owner ${peerIdOf(expected)}`)
}

function checkName (value: string, field: string): void {
  if (!NAME.test(value)) throw new Error(`malformed bundle: ${field} name ${JSON.stringify(value.slice(0, 80))} is not 1-63 letters, digits, - or _`)
}
