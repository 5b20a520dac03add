// Bundles this node holds, in <dir>/<sha256>.bundle: verified before they are written
// (structure, code hash, signature by the embedded owner key), written atomically, and
// checked against their name again when read (a corrupted file is dropped, not served).
import { readFile, rm, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeBundle, encodeBundle, verifyBundle } from '../cells/bundle.js'
import type { CellBundle } from '../cells/bundle.js'
import { mkdirDurable, writeFileAtomic } from '../util/atomic-file.js'

const HASH = /^[0-9a-f]{64}$/

export interface BundleStore {
  /** Verify and store an encoded bundle (idempotent). Throws a one-line error if it is not a valid signed bundle. */
  put: (encoded: Uint8Array, expectedHash?: string) => Promise<CellBundle>
  /** The encoded bundle, or undefined if not held (or corrupted on disk). */
  getEncoded: (hash: string) => Promise<Uint8Array | undefined>
  get: (hash: string) => Promise<CellBundle | undefined>
  has: (hash: string) => Promise<boolean>
  remove: (hash: string) => Promise<void>
  list: () => Promise<string[]>
}

export function createBundleStore (dir: string): BundleStore {
  const file = (hash: string): string => {
    if (!HASH.test(hash)) throw new Error(`invalid bundle id ${JSON.stringify(hash.slice(0, 80))}: expected 64 hex digits (sha256)`)
    return join(dir, `${hash}.bundle`)
  }
  const read = async (hash: string): Promise<{ encoded: Uint8Array, bundle: CellBundle } | undefined> => {
    let encoded: Uint8Array
    try {
      encoded = await readFile(file(hash))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const bundle = decodeBundle(encoded)
      if (bundle.hash === hash) return { encoded, bundle }
    } catch {}
    await rm(file(hash), { force: true })
    return undefined
  }
  // created (durably) once, not fsynced again for every bundle
  let ready: Promise<void> | undefined
  return {
    async put (encoded, expectedHash) {
      const bundle = decodeBundle(encoded)
      if (expectedHash !== undefined && bundle.hash !== expectedHash) throw new Error(`bundle is ${bundle.hash}, not the requested ${expectedHash}`)
      await verifyBundle(bundle, bundle.owner)
      ready ??= mkdirDurable(dir)
      await ready
      await writeFileAtomic(file(bundle.hash), encodeBundle(bundle))
      return bundle
    },
    async getEncoded (hash) {
      return (await read(hash))?.encoded
    },
    async get (hash) {
      return (await read(hash))?.bundle
    },
    async has (hash) {
      return (await read(hash)) !== undefined
    },
    async remove (hash) {
      await rm(file(hash), { force: true })
    },
    async list () {
      try {
        return (await readdir(dir)).filter(f => f.endsWith('.bundle')).map(f => f.slice(0, -7)).filter(h => HASH.test(h))
      } catch {
        return []
      }
    }
  }
}
