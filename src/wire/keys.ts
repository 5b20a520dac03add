// Ed25519 keys for node identities and app owners, and the one place Stem signs and
// verifies bytes. Public keys travel protobuf-encoded (libp2p's form), so a peer id can
// be derived from any signer.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PrivateKey, PublicKey } from '@libp2p/interface'
import { readFile } from 'node:fs/promises'
import { writeFileAtomic } from '../util/atomic-file.js'
import { ed25519 } from './ed25519.js'
import type { SignFunction, VerifyFunction } from './ed25519.js'

export type { PrivateKey, PublicKey, SignFunction, VerifyFunction }

export async function createEd25519Key (): Promise<Ed25519PrivateKey> {
  return generateKeyPair('Ed25519')
}

export function encodePrivateKey (key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key)
}

export function decodePrivateKey (bytes: Uint8Array): PrivateKey {
  const key = privateKeyFromProtobuf(bytes)
  if (key.type !== 'Ed25519') throw new Error(`expected an Ed25519 key, got ${key.type}`)
  return key
}

export function encodePublicKey (key: PublicKey): Uint8Array {
  return publicKeyToProtobuf(key)
}

/** Throws a one-line error if the bytes are not a protobuf-encoded Ed25519 public key. */
export function decodePublicKey (bytes: Uint8Array): PublicKey {
  let key: PublicKey
  try {
    key = publicKeyFromProtobuf(bytes)
  } catch (err) {
    throw new Error(`invalid public key: ${(err as Error).message}`)
  }
  if (key.type !== 'Ed25519') throw new Error(`expected an Ed25519 public key, got ${key.type}`)
  return key
}

/** The peer id string (base58btc) of the holder of this public key. */
export function peerIdOf (key: PublicKey): string {
  return peerIdFromPublicKey(key).toString()
}

export async function signBytes (key: PrivateKey, data: Uint8Array): Promise<Uint8Array> {
  return key.sign(data)
}

/** false for a bad signature or malformed input; never throws. */
export async function verifyBytes (key: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  try {
    return await key.verify(data, signature)
  } catch {
    return false
  }
}

/**
 * A synchronous signing function for hot paths (frames): the key is prepared once
 * instead of per signature as `key.sign` does (see ed25519.ts for the implementation).
 */
export function createSyncSigner (key: PrivateKey): SignFunction {
  if (key.type !== 'Ed25519') throw new Error(`expected an Ed25519 key, got ${key.type}`)
  return ed25519.signer(key.raw.subarray(0, 32), key.publicKey.raw)
}

/** A synchronous verifier for hot paths (frames): false for a bad signature, never throws. Throws on a non-Ed25519 key. */
export function createSyncVerifier (key: PublicKey): VerifyFunction {
  if (key.type !== 'Ed25519') throw new Error(`expected an Ed25519 public key, got ${key.type}`)
  return ed25519.verifier(key.raw)
}

/**
 * Load the key stored at `path`, or create it there (mode 0600, atomic, fsynced) if the
 * file does not exist. A file that exists but does not hold a key is an error, never
 * silently replaced.
 */
export async function loadOrCreateKey (path: string): Promise<PrivateKey> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read key file ${path}: ${(err as Error).message}`)
  }
  if (bytes != null) {
    try {
      return decodePrivateKey(bytes)
    } catch (err) {
      throw new Error(`key file ${path} is corrupt: ${(err as Error).message}`)
    }
  }
  const key = await createEd25519Key()
  await writeFileAtomic(path, encodePrivateKey(key), { mode: 0o600 })
  return key
}
