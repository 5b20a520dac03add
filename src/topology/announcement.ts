// Wire form of app announcements (payload `leaders` of a Frame, see apps.proto). Decoding
// refuses oversized, malformed or inconsistent announcements with a one-line reason.
import { LeadersMessage } from '../wire/proto/apps.js'
import type { AppAnnouncement } from '../wire/proto/apps.js'
import { instanceAddress } from './types.js'

export type { AppAnnouncement }

export const MAX_ANNOUNCEMENT_BYTES = 256 * 1024
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i

export function encodeAppAnnouncement (app: AppAnnouncement): Uint8Array {
  return LeadersMessage.encode({ app })
}

export function decodeAppAnnouncement (bytes: Uint8Array): AppAnnouncement {
  if (bytes.byteLength > MAX_ANNOUNCEMENT_BYTES) throw new Error(`invalid app announcement: ${bytes.byteLength} bytes (at most ${MAX_ANNOUNCEMENT_BYTES})`)
  let message: LeadersMessage
  try {
    message = LeadersMessage.decode(bytes)
  } catch (err) {
    throw new Error(`invalid app announcement: ${(err as Error).message}`)
  }
  const a = message.app
  if (a == null) throw new Error('invalid app announcement: no app')
  if (!NAME.test(a.app)) throw new Error(`invalid app announcement: bad app name ${JSON.stringify(a.app.slice(0, 80))}`)
  if (a.leader === '' || a.owner === '') throw new Error('invalid app announcement: no leader or owner')
  const cells = new Map<string, number>()
  for (const c of a.cells) {
    if (!NAME.test(c.name) || c.replicas > 1000) throw new Error(`invalid app announcement: bad cell ${JSON.stringify(c.name.slice(0, 80))}`)
    cells.set(c.name, c.replicas)
  }
  for (const i of a.instances) {
    const m = /^([^/]+)\/([^#]+)#(\d+)$/.exec(i.address)
    if (m == null || m[1] !== a.app || !cells.has(m[2]) || Number(m[3]) >= (cells.get(m[2]) ?? 0) || instanceAddress(m[1], m[2], Number(m[3])) !== i.address) {
      throw new Error(`invalid app announcement: instance ${JSON.stringify(i.address.slice(0, 80))} is not one of the app's cells`)
    }
    if (i.clonesReady.some(c => !i.clones.includes(c))) throw new Error(`invalid app announcement: instance ${i.address} has a ready clone that is not one of its clones`)
  }
  for (const r of a.routes) if (!cells.has(r.cell)) throw new Error(`invalid app announcement: route to unknown cell ${JSON.stringify(r.cell.slice(0, 80))}`)
  return a
}

/** Whether `next` supersedes `known` (a later term, or a later announcement in the same term). */
export function isNewer (next: AppAnnouncement, known: AppAnnouncement | undefined): boolean {
  if (known === undefined) return true
  return next.term > known.term || (next.term === known.term && next.version > known.version)
}
