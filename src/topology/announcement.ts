// Wire form of the leaders' messages (payload `leaders` of a Frame, see apps.proto): app
// announcements and reservation announcements, one per LeadersMessage. Decoding refuses
// oversized, malformed or inconsistent messages with a one-line reason.
import { LeadersMessage } from '../wire/proto/apps.js'
import type { AppAnnouncement } from '../wire/proto/apps.js'
import { decodeAnnouncement, encodeAnnouncement } from './reservations-codec.js'
import type { ReservationAnnouncement } from './reservations.js'
import { instanceAddress } from './types.js'

export type { AppAnnouncement }

export const MAX_ANNOUNCEMENT_BYTES = 256 * 1024
/** a leader's reason for a recovering or lost instance (peer ids, a copy, the owner's command) fits in this */
export const MAX_REASON_CHARS = 1024
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i
/** a cell's name; `_` only from a dead-letter stream's partition (`orders_dead-p0`, cells/streams/partition.ts) */
const CELL_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/i

export type LeadersPayload =
  | { kind: 'app', app: AppAnnouncement }
  | { kind: 'reservations', reservations: ReservationAnnouncement }

export function encodeAppAnnouncement (app: AppAnnouncement): Uint8Array {
  return LeadersMessage.encode({ app })
}

export function encodeReservationMessage (reservations: ReservationAnnouncement): Uint8Array {
  return LeadersMessage.encode({ reservations: encodeAnnouncement(reservations) as Uint8Array<ArrayBuffer> })
}

/** Decodes a LeadersMessage: exactly one app announcement or one reservation announcement. */
export function decodeLeadersMessage (bytes: Uint8Array): LeadersPayload {
  if (bytes.byteLength > MAX_ANNOUNCEMENT_BYTES) throw new Error(`invalid leaders message: ${bytes.byteLength} bytes (at most ${MAX_ANNOUNCEMENT_BYTES})`)
  let message: LeadersMessage
  try {
    message = LeadersMessage.decode(bytes)
  } catch (err) {
    throw new Error(`invalid leaders message: ${(err as Error).message.split('\n')[0]}`)
  }
  if (message.app != null && message.reservations != null) throw new Error('invalid leaders message: both an app and reservations')
  if (message.reservations != null) return { kind: 'reservations', reservations: decodeAnnouncement(message.reservations) }
  if (message.app == null) throw new Error('invalid leaders message: neither an app nor reservations')
  return { kind: 'app', app: checkAppAnnouncement(message.app) }
}

export function decodeAppAnnouncement (bytes: Uint8Array): AppAnnouncement {
  if (bytes.byteLength > MAX_ANNOUNCEMENT_BYTES) throw new Error(`invalid app announcement: ${bytes.byteLength} bytes (at most ${MAX_ANNOUNCEMENT_BYTES})`)
  let message: LeadersMessage
  try {
    message = LeadersMessage.decode(bytes)
  } catch (err) {
    throw new Error(`invalid app announcement: ${(err as Error).message}`)
  }
  if (message.app == null) throw new Error('invalid app announcement: no app')
  return checkAppAnnouncement(message.app)
}

function checkAppAnnouncement (a: AppAnnouncement): AppAnnouncement {
  if (!NAME.test(a.app)) throw new Error(`invalid app announcement: bad app name ${JSON.stringify(a.app.slice(0, 80))}`)
  if (a.leader === '' || a.owner === '') throw new Error('invalid app announcement: no leader or owner')
  const cells = new Map<string, number>()
  for (const c of a.cells) {
    if (!CELL_NAME.test(c.name) || c.replicas > 1000) throw new Error(`invalid app announcement: bad cell ${JSON.stringify(c.name.slice(0, 80))}`)
    cells.set(c.name, c.replicas)
  }
  for (const i of a.instances) {
    const m = /^([^/]+)\/([^#]+)#(\d+)$/.exec(i.address)
    if (m == null || m[1] !== a.app || !cells.has(m[2]) || Number(m[3]) >= (cells.get(m[2]) ?? 0) || instanceAddress(m[1], m[2], Number(m[3])) !== i.address) {
      throw new Error(`invalid app announcement: instance ${JSON.stringify(i.address.slice(0, 80))} is not one of the app's cells`)
    }
    if (i.clonesReady.some(c => !i.clones.includes(c))) throw new Error(`invalid app announcement: instance ${i.address} has a ready clone that is not one of its clones`)
    if (i.reason !== undefined && i.reason.length > MAX_REASON_CHARS) throw new Error(`invalid app announcement: instance ${i.address} has a reason of ${i.reason.length} characters (at most ${MAX_REASON_CHARS})`)
  }
  for (const r of a.routes) if (!cells.has(r.cell)) throw new Error(`invalid app announcement: route to unknown cell ${JSON.stringify(r.cell.slice(0, 80))}`)
  return a
}

/** Whether `next` supersedes `known` (a later term, or a later announcement in the same term). */
export function isNewer (next: AppAnnouncement, known: AppAnnouncement | undefined): boolean {
  if (known === undefined) return true
  return next.term > known.term || (next.term === known.term && next.version > known.version)
}
