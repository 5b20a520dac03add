// A stream route (`POST /orders -> stream orders`) as the gateway takes it: the manifest
// and the announcements carry it as a route to partition 0's cell with the handler
// STREAM_ROUTE_HANDLER; the gateway gets the stream and its partition count, and picks the
// partition of each request by its key (`?key=`), as `stem.emit` and the SDK do.
import type { AppAnnouncement } from '../announcement.js'
import { STREAM_ROUTE_HANDLER } from './stream-manifest.js'

/** `{ cell: stream, partitions }` for a stream route of the announcement, `{}` for another route */
export function streamGatewayRoute (a: AppAnnouncement, route: { cell: string, handler: string }): { cell?: string, partitions?: number } {
  if (route.handler !== STREAM_ROUTE_HANDLER) return {}
  const m = /^(.+)-p0$/.exec(route.cell)
  if (m == null) return {}
  const stream = m[1]
  const pattern = new RegExp(`^${stream}-p(\\d+)$`)
  const partitions = a.cells.filter(c => pattern.test(c.name)).length
  return { cell: stream, partitions }
}
