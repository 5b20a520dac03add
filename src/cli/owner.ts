// The owner key of the CLI's user: `owner.key` in the data dir (created on first use,
// mode 0600), or a key file given with --owner-key. Its public key is the owner id of the
// apps published with it. `stem owner export/import` carry it between machines as an
// owner key file: one JSON line naming its kind and owner id, so a node key or another
// file is refused instead of silently making someone else the owner.
import { readFile } from 'node:fs/promises'
import { decodePrivateKey, encodePrivateKey, loadOrCreateKey, peerIdOf } from '../wire/keys.js'
import type { PrivateKey } from '../wire/keys.js'
import { dataFiles } from '../node/data-dir.js'
import { signOwnerRequest } from '../topology/owner-request.js'
import type { OwnerRequest, SignedOwnerRequest } from '../topology/owner-request.js'
import { CliError, dataDirOf } from './context.js'

export interface OwnerOptions { data?: string, ownerKey?: string }

const KIND = 'stem-owner-key/1'
/** an owner key file is about 150 bytes; anything far bigger is not one */
const MAX_KEY_FILE = 4096

export async function ownerKey (options: OwnerOptions): Promise<PrivateKey> {
  if (options.ownerKey !== undefined) return await readOwnerKeyFile(options.ownerKey)
  return await loadOrCreateKey(dataFiles(dataDirOf(options)).owner)
}

export async function signedByOwner (options: OwnerOptions, request: OwnerRequest): Promise<SignedOwnerRequest> {
  return await signOwnerRequest(await ownerKey(options), request)
}

/** the text of an owner key file */
export function encodeOwnerKeyFile (key: PrivateKey): string {
  return JSON.stringify({ kind: KIND, owner: peerIdOf(key.publicKey), key: Buffer.from(encodePrivateKey(key)).toString('base64') }) + '\n'
}

/** the key in an owner key file's text; throws a one-line error saying what is wrong */
export function decodeOwnerKeyFile (text: string): PrivateKey {
  if (text.length > MAX_KEY_FILE) throw new Error(`not an owner key file (${text.length} bytes)`)
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { throw new Error('not an owner key file (not JSON; write one with `stem owner export`)') }
  const o = parsed as { kind?: unknown, owner?: unknown, key?: unknown }
  if (typeof o !== 'object' || o === null || o.kind !== KIND) throw new Error(`not an owner key file (kind is not "${KIND}")`)
  if (typeof o.key !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(o.key)) throw new Error('owner key file without a base64 "key"')
  let key: PrivateKey
  try { key = decodePrivateKey(Buffer.from(o.key, 'base64')) } catch (err) { throw new Error(`owner key file with an invalid key: ${(err as Error).message}`) }
  if (o.owner !== peerIdOf(key.publicKey)) throw new Error('owner key file whose "owner" does not match its key')
  return key
}

/** the owner key in FILE, or a CliError naming the file */
export async function readOwnerKeyFile (file: string): Promise<PrivateKey> {
  let text: string
  try { text = await readFile(file, 'utf8') } catch (err) { throw new CliError(`cannot read owner key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`) }
  try { return decodeOwnerKeyFile(text) } catch (err) { throw new CliError(`${file}: ${(err as Error).message}`) }
}

/** `app/cell` → its parts; one-line error otherwise */
export function splitAppCell (text: string, cellRequired: boolean): { app: string, cell?: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:\/([A-Za-z0-9_-]+))?$/.exec(text)
  if (m === null || (cellRequired && m[2] === undefined)) throw new Error(`invalid address "${text}": expected ${cellRequired ? 'APP/CELL' : 'APP or APP/CELL'}`)
  return { app: m[1], cell: m[2] }
}
