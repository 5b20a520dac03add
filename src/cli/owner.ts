// The owner key of the CLI's user: `owner.key` in the data dir (created on first use,
// mode 0600). Its public key is the owner id of the apps published with it.
import { loadOrCreateKey } from '../wire/keys.js'
import type { PrivateKey } from '../wire/keys.js'
import { dataFiles } from '../node/data-dir.js'
import { signOwnerRequest } from '../topology/owner-request.js'
import type { OwnerRequest, SignedOwnerRequest } from '../topology/owner-request.js'
import { dataDirOf } from './context.js'

export async function ownerKey (options: { data?: string }): Promise<PrivateKey> {
  return await loadOrCreateKey(dataFiles(dataDirOf(options)).owner)
}

export async function signedByOwner (options: { data?: string }, request: OwnerRequest): Promise<SignedOwnerRequest> {
  return await signOwnerRequest(await ownerKey(options), request)
}

/** `app/cell` → its parts; one-line error otherwise */
export function splitAppCell (text: string, cellRequired: boolean): { app: string, cell?: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:\/([A-Za-z0-9_-]+))?$/.exec(text)
  if (m === null || (cellRequired && m[2] === undefined)) throw new Error(`invalid address "${text}": expected ${cellRequired ? 'APP/CELL' : 'APP or APP/CELL'}`)
  return { app: m[1], cell: m[2] }
}
