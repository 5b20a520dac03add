// Mounts the dashboard on the node's control API (one Fastify instance):
//   GET /                  → 302 to /dashboard (unless mountRoot is false)
//   GET /dashboard         the page
//   GET /dashboard/app.js, /dashboard/app.css
//   GET /dashboard/state   the current DashboardSnapshot as JSON
//   GET /dashboard/logs?cell=ADDRESS, GET /dashboard/streams?app=APP  a cell's log, an app's stream lag
//   GET /dashboard/events  SSE: `snapshot` first, then `patch` (changed parts, coalesced,
//                          and every refreshMs so rates and lastSeen stay fresh) and `event`
// Every route is read-only and public (config `public: true`); with `tokenCheck` the
// operator can make them private (token in `Authorization: Bearer` or `?token=`, since
// a browser's EventSource cannot set headers).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createLogger } from '../util/logger.js'
import { publicRouteConfig } from '../util/public-route.js'
import { dashboardHtml, loadDashboardAssets, type DashboardAssets } from './assets.js'
import { createSseHub, formatSse } from './sse-hub.js'
import { snapshotParts, type DashboardEvent, type DashboardLogLine, type DashboardSnapshot, type DashboardStreamPartition, type DashboardSource, type SnapshotPart, type StreamMessages } from './types.js'

export interface DashboardOptions {
  source: DashboardSource
  /** when given, every dashboard route requires a token it accepts */
  tokenCheck?: (token: string | undefined) => boolean
  /** ms between full refreshes sent to open pages; default 2000 */
  refreshMs?: number
  /** ms to gather change notifications into one patch; default 100 */
  coalesceMs?: number
  /** ms between SSE heartbeat comments; default 15000 */
  heartbeatMs?: number
  /** concurrent event streams; default 64 */
  maxClients?: number
  /** unsent bytes per stream before that client is dropped; default 1 MiB */
  maxBufferedBytes?: number
  /** events sent in a snapshot; default 100 */
  maxEvents?: number
  /** the recent log lines of a cell (`app/cell` or `app/cell#i`): GET /dashboard/logs?cell=ADDRESS */
  logs?: (address: string) => Promise<DashboardLogLine[]>
  /** the partitions of an app's streams with their groups' lag: GET /dashboard/streams?app=APP */
  streams?: (app: string) => Promise<DashboardStreamPartition[]>
  /** redirect GET / to the dashboard; default true */
  mountRoot?: boolean
  /** where the built app.js/app.css are; default dist/dashboard */
  assets?: DashboardAssets
}

export interface DashboardHandle {
  /** open event streams */
  clients: () => number
  /** streams dropped for not reading */
  dropped: () => number
}

const log = createLogger('dashboard')

export function registerDashboard (fastify: FastifyInstance, options: DashboardOptions): DashboardHandle {
  const { source, tokenCheck } = options
  const refreshMs = positive('refreshMs', options.refreshMs ?? 2000)
  const coalesceMs = positive('coalesceMs', options.coalesceMs ?? 100)
  const maxEvents = positive('maxEvents', options.maxEvents ?? 100)
  const assets = options.assets ?? loadDashboardAssets()

  let unsubscribe: (() => void) | undefined
  let refreshTimer: NodeJS.Timeout | undefined
  let flushTimer: NodeJS.Timeout | undefined
  const dirty = new Set<SnapshotPart>()

  const hub = createSseHub({
    maxClients: options.maxClients,
    maxBufferedBytes: options.maxBufferedBytes,
    heartbeatMs: options.heartbeatMs,
    onActive: active => { if (active) activate(); else deactivate() }
  })

  const snapshot = (): DashboardSnapshot | undefined => {
    try {
      const snap = source.snapshot()
      return snap.events.length > maxEvents ? { ...snap, events: snap.events.slice(-maxEvents) } : snap
    } catch (err) {
      log.warnOnce(`snapshot:${(err as Error).message}`, `dashboard snapshot failed: ${(err as Error).message}`)
      return undefined
    }
  }

  const sendPatch = (parts: Iterable<SnapshotPart>): void => {
    const snap = snapshot()
    if (snap == null) return
    const patch: StreamMessages['patch'] = {}
    for (const part of parts) Object.assign(patch, { [part]: snap[part] })
    hub.broadcast('patch', patch)
  }

  const flush = (): void => {
    flushTimer = undefined
    const parts = [...dirty]
    dirty.clear()
    if (parts.length > 0) sendPatch(parts)
  }

  const onSourceEvent = (event: DashboardEvent): void => {
    if (event.type === 'event') {
      hub.broadcast('event', event.event satisfies StreamMessages['event'])
      return
    }
    for (const part of event.parts ?? snapshotParts) dirty.add(part)
    flushTimer ??= setTimeout(flush, coalesceMs)
  }

  // The source is only watched while a page is open.
  function activate (): void {
    unsubscribe = source.subscribe(onSourceEvent)
    refreshTimer = setInterval(() => { sendPatch(snapshotParts) }, refreshMs)
    refreshTimer.unref()
  }

  function deactivate (): void {
    unsubscribe?.()
    unsubscribe = undefined
    clearInterval(refreshTimer)
    clearTimeout(flushTimer)
    flushTimer = undefined
    dirty.clear()
  }

  const allowed = (request: FastifyRequest, reply: FastifyReply): boolean => {
    if (tokenCheck == null) return true
    const header = request.headers.authorization
    const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined
    const query = (request.query as Record<string, unknown> | undefined)?.token
    if (tokenCheck(bearer ?? (typeof query === 'string' ? query : undefined))) return true
    void reply.code(401).send({ error: 'this dashboard needs the node\'s API token (?token=…)' })
    return false
  }

  const common = (reply: FastifyReply): FastifyReply => reply
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')

  const route = { config: publicRouteConfig }

  if (options.mountRoot !== false) {
    fastify.get('/', route, async (request, reply) => {
      const search = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''
      return await reply.redirect('/dashboard' + search)
    })
  }

  fastify.get('/dashboard', route, async (request, reply) => {
    if (!allowed(request, reply)) return reply
    const title = snapshot()?.self.mesh
    return await common(reply)
      .header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .type('text/html; charset=utf-8')
      .send(dashboardHtml(title != null ? `Stem · ${title}` : 'Stem'))
  })

  fastify.get('/dashboard/app.js', route, async (request, reply) => {
    return await common(reply).type('text/javascript; charset=utf-8').send(assets.js)
  })

  fastify.get('/dashboard/app.css', route, async (request, reply) => {
    return await common(reply).type('text/css; charset=utf-8').send(assets.css)
  })

  fastify.get('/dashboard/state', route, async (request, reply) => {
    if (!allowed(request, reply)) return reply
    const snap = snapshot()
    if (snap == null) return await reply.code(503).send({ error: 'the node cannot describe its state right now' })
    return await common(reply).send(snap)
  })

  fastify.get('/dashboard/events', route, (request, reply) => {
    if (!allowed(request, reply)) return
    const snap = snapshot()
    if (snap == null) {
      void reply.code(503).send({ error: 'the node cannot describe its state right now' })
      return
    }
    reply.hijack()
    if (!hub.add(reply.raw, formatSse('snapshot', snap satisfies StreamMessages['snapshot']))) {
      reply.raw.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' })
      reply.raw.end(JSON.stringify({ error: 'too many dashboard streams open' }))
    }
  })

  const logs = options.logs
  if (logs !== undefined) {
    fastify.get<{ Querystring: { cell?: string } }>('/dashboard/logs', route, async (request, reply) => {
      if (!allowed(request, reply)) return reply
      const address = request.query.cell
      if (typeof address !== 'string' || address === '') return await reply.code(400).send({ error: 'name a cell: /dashboard/logs?cell=app/cell#i' })
      try {
        return await common(reply).send(await logs(address))
      } catch (err) {
        return await reply.code(400).send({ error: (err as Error).message.split('\n')[0] })
      }
    })
  }

  const streams = options.streams
  if (streams !== undefined) {
    fastify.get<{ Querystring: { app?: string } }>('/dashboard/streams', route, async (request, reply) => {
      if (!allowed(request, reply)) return reply
      const app = request.query.app
      if (typeof app !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/i.test(app)) return await reply.code(400).send({ error: 'name an app: /dashboard/streams?app=APP' })
      try {
        return await common(reply).send(await streams(app))
      } catch (err) {
        return await reply.code(400).send({ error: (err as Error).message.split('\n')[0] })
      }
    })
  }

  // Streams never finish on their own: end them before the server waits for open requests.
  fastify.addHook('preClose', (done) => {
    hub.close()
    deactivate()
    done()
  })

  return {
    clients: () => hub.size,
    dropped: () => hub.dropped
  }
}

function positive (name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`dashboard option ${name} must be a positive number, got ${value}`)
  return value
}
