// Who may place cells of an app on this node (transform a cell, hold or promote a clone):
// the app's leader as its latest announcement names it, or another member of its group
// (a new leader may act before its first announcement arrives). For an app this node has
// not heard of yet, anyone may: nothing of an existing app is at stake, and the app's
// first announcement fences whatever its leader does not place here (fencing.ts). A
// transform must also carry the code of the app's owner, so a member cannot swap in code
// the owner did not sign.
import { decodePublicKey, peerIdOf } from '../wire/keys.js'
import type { AppTable } from './app-table.js'

/** Why `peer` may not place `address` here, or undefined if it may. `owner`: the owner key a transform carries. */
export function placementRefusal (table: AppTable, peer: string, address: string, owner?: Uint8Array): string | undefined {
  const app = address.slice(0, Math.max(0, address.indexOf('/')))
  const known = table.get(app)
  if (known === undefined) return undefined
  if (known.leader !== peer && !known.members.includes(peer)) return `${peer} is not in the group of app ${app}`
  if (owner !== undefined) {
    let ownerId: string
    try {
      ownerId = peerIdOf(decodePublicKey(owner))
    } catch {
      return `the code for ${address} carries a malformed owner key`
    }
    if (ownerId !== known.owner) return `the code for ${address} is signed by ${ownerId}, not by the owner of app ${app}`
  }
  return undefined
}
