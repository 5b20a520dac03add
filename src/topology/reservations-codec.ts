// Wire encoding of reservation announcements (payload `leaders` of a Frame). Decoding
// refuses oversized, truncated or malformed bytes and announcements whose content is
// invalid, with a one-line reason; it never returns a half-valid announcement.
import { ReservationAnnouncement as WireAnnouncement } from '../wire/proto/leaders.js'
import { announcementProblem, defaultLedgerOptions } from './reservations.js'
import type { ReservationAnnouncement } from './reservations.js'

export const maxAnnouncementBytes = 512 * 1024

function toNumber (v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`invalid reservation announcement: ${what} is too large`)
  return Number(v)
}

export function encodeAnnouncement (a: ReservationAnnouncement): Uint8Array {
  const problem = announcementProblem(a)
  if (problem !== undefined) throw new Error(`invalid reservation announcement: ${problem}`)
  return WireAnnouncement.encode({
    app: a.app,
    term: BigInt(a.term),
    version: BigInt(a.version),
    ttlMs: a.ttlMs,
    items: a.items.map(i => ({ id: i.id, node: i.node, memory: BigInt(i.memory), cells: i.cells, since: BigInt(i.since) }))
  })
}

export function decodeAnnouncement (bytes: Uint8Array): ReservationAnnouncement {
  if (bytes.byteLength > maxAnnouncementBytes) throw new Error(`invalid reservation announcement: ${bytes.byteLength} bytes (at most ${maxAnnouncementBytes})`)
  let wire: WireAnnouncement
  try {
    wire = WireAnnouncement.decode(bytes, { limits: { items: defaultLedgerOptions.maxItems } })
  } catch (err) {
    throw new Error(`invalid reservation announcement: ${(err as Error).message.split('\n')[0]}`)
  }
  const a: ReservationAnnouncement = {
    app: wire.app,
    term: toNumber(wire.term, 'term'),
    version: toNumber(wire.version, 'version'),
    ttlMs: wire.ttlMs,
    items: wire.items.map(i => ({ id: i.id, node: i.node, memory: toNumber(i.memory, 'memory'), cells: i.cells, since: toNumber(i.since, 'since') }))
  }
  const problem = announcementProblem(a)
  if (problem !== undefined) throw new Error(`invalid reservation announcement: ${problem}`)
  return a
}
