// Synchronous Ed25519 for the hot path: every frame is signed and verified (SPEC §3), and
// a sequential ask between two nodes waits for two signatures and two verifications.
// libsodium (sodium-native's prebuilt addon) does both in under half the time of
// node:crypto's OpenSSL (about 19 vs 40 µs to sign, 51 vs 115 µs to verify a frame here),
// so it is used whenever its addon loads; node:crypto with cached KeyObjects otherwise.
// Both produce and accept the same RFC 8032 signatures.
import { createRequire } from 'node:module'
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto'

export type SignFunction = (data: Uint8Array) => Uint8Array
/** false for a bad signature or malformed input; never throws */
export type VerifyFunction = (data: Uint8Array, signature: Uint8Array) => boolean

export interface Ed25519Backend {
  readonly name: 'sodium' | 'node'
  /** `secret`: the 32-byte seed; `publicKey`: its 32-byte public key */
  signer: (secret: Uint8Array, publicKey: Uint8Array) => SignFunction
  /** `publicKey`: 32 bytes; throws if it is not */
  verifier: (publicKey: Uint8Array) => VerifyFunction
}

const SIGNATURE_BYTES = 64
const KEY_BYTES = 32

function checkKey (bytes: Uint8Array, what: string): void {
  if (bytes.byteLength !== KEY_BYTES) throw new Error(`an Ed25519 ${what} has ${KEY_BYTES} bytes, got ${bytes.byteLength}`)
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')

export const nodeBackend: Ed25519Backend = {
  name: 'node',
  signer (secret, publicKey) {
    checkKey(secret, 'seed')
    checkKey(publicKey, 'public key')
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64(secret), x: b64(publicKey) }, format: 'jwk' })
    return data => nodeSign(null, data, key)
  },
  verifier (publicKey) {
    checkKey(publicKey, 'public key')
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicKey) }, format: 'jwk' })
    return (data, signature) => {
      if (signature.byteLength !== SIGNATURE_BYTES) return false
      try {
        return nodeVerify(null, data, key, signature)
      } catch {
        return false
      }
    }
  }
}

/** The part of sodium-native's API used here (it ships no type declarations). */
interface Sodium {
  crypto_sign_detached: (signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array) => void
  crypto_sign_verify_detached: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean
}

function sodiumBackendOf (sodium: Sodium): Ed25519Backend {
  return {
    name: 'sodium',
    signer (secret, publicKey) {
      checkKey(secret, 'seed')
      checkKey(publicKey, 'public key')
      // libsodium's secret key is the seed followed by the public key
      const secretKey = Buffer.alloc(2 * KEY_BYTES)
      secretKey.set(secret, 0)
      secretKey.set(publicKey, KEY_BYTES)
      return data => {
        const signature = Buffer.allocUnsafe(SIGNATURE_BYTES)
        sodium.crypto_sign_detached(signature, data, secretKey)
        return signature
      }
    },
    verifier (publicKey) {
      checkKey(publicKey, 'public key')
      const key = Buffer.from(publicKey)
      return (data, signature) => {
        // libsodium would read the first 64 bytes of a longer one
        if (signature.byteLength !== SIGNATURE_BYTES) return false
        try {
          return sodium.crypto_sign_verify_detached(signature, data, key)
        } catch {
          return false
        }
      }
    }
  }
}

function loadSodium (): Ed25519Backend | undefined {
  try {
    return sodiumBackendOf(createRequire(import.meta.url)('sodium-native') as Sodium)
  } catch {
    // no prebuilt addon for this platform: node:crypto does the same, slower
    return undefined
  }
}

/** libsodium's backend, if its addon loads on this platform */
export const sodiumBackend: Ed25519Backend | undefined = loadSodium()

/** What frames use: libsodium if available, else node:crypto. */
export const ed25519: Ed25519Backend = sodiumBackend ?? nodeBackend
