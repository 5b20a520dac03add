// Keyed cells (SPEC §4): which shard serves a key. A keyed cell has a fixed number of
// shards, its instances `app/cell#0…#n-1`, each placed, cloned, fenced by epoch and
// failed over like any instance; a key is served by shard fnv1a32(utf8(key)) mod n. The
// hash is part of the format (persisted states sit in their shard): never change it.
import { encodeKey, parseAddress } from './address.js'

/** shards of a keyed cell when its manifest gives no `replicas` */
export const DEFAULT_SHARDS = 16
/** the most shards a keyed cell may have */
export const MAX_SHARDS = 1024
/**
 * The method a keyed shard answers itself (the runtime, not its code) with its keys,
 * `{ stored, active: [key…] }`, for `stem cells APP`; only to asks no cell sent.
 */
export const KEYS_METHOD = 'stem:keys'
/** ms without a message after which a key's activation is passivated (manifest `idle`) */
export const DEFAULT_IDLE_MS = 5 * 60_000

/** 32-bit FNV-1a of the key's UTF-8 bytes. */
export function keyHash (key: string): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(key, 'utf8')) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

export function shardOfKey (key: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS) throw new Error(`invalid shard count ${shards}: expected 1–${MAX_SHARDS}`)
  return keyHash(key) % shards
}

/**
 * The address a keyed message travels under: `app/cell#s/<key>`, s the key's shard among
 * `shards`. An address that already names its shard must name the right one.
 */
export function shardAddress (address: string, shards: number): string {
  const { app, cell, replica, key } = parseAddress(address)
  if (key === undefined) return address
  const shard = shardOfKey(key, shards)
  if (replica !== undefined && replica !== shard) throw new Error(`key ${JSON.stringify(key.slice(0, 60))} of ${app}/${cell} belongs to shard ${shard}, not ${replica}`)
  return `${app}/${cell}#${shard}/${encodeKey(key)}`
}

/**
 * The export that makes a bundle keyed: the signed code itself carries it, so every node,
 * clone and restore runs the cell the way its owner published it. The isolate reads it
 * from the module's namespace (isolate-bootstrap.ts).
 */
export const KEYED_EXPORT = '__stemKeyed'

/** The bundled module with KEYED_EXPORT added before its source map comment (line numbers unchanged). */
export function withKeyedExport (code: string, idleMs: number): string {
  if (!Number.isInteger(idleMs) || idleMs < 1) throw new Error(`invalid idle time ${idleMs} ms`)
  const line = `export const ${KEYED_EXPORT} = { idle: ${idleMs} };\n`
  const map = code.lastIndexOf('//# sourceMappingURL=')
  return map < 0 ? code + '\n' + line : code.slice(0, map) + line + code.slice(map)
}

/** The idle time a keyed bundle's code carries (withKeyedExport), or 0 for a cell that is not keyed. */
export function keyedIdleOf (code: string): number {
  const at = code.lastIndexOf(`export const ${KEYED_EXPORT} = { idle: `)
  if (at < 0) return 0
  const match = /^export const \w+ = \{ idle: (\d{1,12}) \};\n/.exec(code.slice(at, at + 80))
  return match === null ? 0 : Number(match[1])
}
