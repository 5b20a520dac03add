// The HTTP gateway: serves every app's manifest routes under `/<app>` with Fastify and
// turns each request into an ask to a cell through the injected backend.
import { encodeKey } from '../cells/address.js'
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { CellResponse, type GatewayBackend } from './backend.js'
import { ReplicaBalancer } from './balancer.js'
import { InFlightLimits } from './in-flight-limits.js'
import { invokeCell, type InvokeOutcome, type RetryPolicy } from './invoke.js'
import { checkRequestPath, pathOf } from './request-path.js'
import { RouteTable } from './route-table.js'
import { TurnBatch } from './turn-batch.js'
import { MAX_ROUTE_TIMEOUT_MS, ROUTE_METHODS, type GatewayRoute } from './routes.js'
import { useBoundedJsonBodies } from '../util/bounded-json-body.js'
import { partitionCell, pickPartition } from '../cells/streams/partition.js'

export interface GatewayComponents {
  backend: GatewayBackend
  /** pino-compatible logger; requests are logged with their request id (`reqId`) */
  logger?: FastifyBaseLogger
  /** called once per answered request (a metrics hook): the app whose route matched ('' if none) and the status code */
  onResponse?: (app: string, status: number) => void
}

export interface GatewayInit {
  /** default 127.0.0.1 */
  host?: string
  /** default 0 (an ephemeral port; see address()) */
  port?: number
  /** largest accepted request body in bytes; default 1 MiB */
  bodyLimit?: number
  /** requests in flight in total before new ones get 503; default 1024 */
  maxInFlight?: number
  /** requests in flight per app/cell before new ones get 503; default 256 */
  maxInFlightPerCell?: number
  /** a route's deadline when it names none (ms); default 10 s */
  defaultTimeoutMs?: number
  /** a client must send all request headers within this (ms); default 10 s */
  headersTimeoutMs?: number
  /** a client must send the whole request, body included, within this (ms); default 30 s */
  requestTimeoutMs?: number
  /** an idle keep-alive connection is closed after this (ms); default 5 s */
  keepAliveTimeoutMs?: number
  /** a connection with no traffic is closed after this (ms), unless the gateway itself is
   * still waiting on a cell for it; default 60 s */
  idleTimeoutMs?: number
  /** how often the server looks for connections past the header/request deadlines (ms); default 1 s */
  connectionsCheckingIntervalMs?: number
  /** at most this many retries of a CELL_UNAVAILABLE failure (where safe); by default the gateway
   * retries until the route's deadline (a failover takes a moment), backing off from 50 ms to 400 ms */
  maxRetries?: number
  /** the Retry-After (s) sent with a 503; default 1 */
  retryAfterSeconds?: number
}

export interface PublicRoute {
  app: string
  method: string
  /** the path clients use: `/<app>` + the route's path */
  path: string
  cell: string
  cellMethod: string
  timeoutMs: number
}

export interface Gateway {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** the bound base URL, e.g. `http://127.0.0.1:41234`; throws before start() */
  address: () => string
  /** Installs or replaces an app's routes, live. Throws (changing nothing) if they are invalid. */
  setRoutes: (app: string, routes: readonly GatewayRoute[]) => void
  /** Removes an app's routes, live; returns whether it had any. */
  removeApp: (app: string) => boolean
  routes: () => PublicRoute[]
  /** requests currently being answered by cells */
  readonly inFlight: number
}

const MiB = 1024 * 1024
/** an incoming x-request-id is echoed only if it looks like an id, not arbitrary text */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Throws a one-line error naming a bad option. */
export function createGateway (components: GatewayComponents, init: GatewayInit = {}): Gateway {
  checkInit(init)
  return new HttpGateway(components, init)
}

const POSITIVE_OPTIONS = ['bodyLimit', 'maxInFlight', 'maxInFlightPerCell', 'defaultTimeoutMs', 'headersTimeoutMs',
  'requestTimeoutMs', 'keepAliveTimeoutMs', 'idleTimeoutMs', 'connectionsCheckingIntervalMs'] as const

function checkInit (init: GatewayInit): void {
  for (const name of POSITIVE_OPTIONS) {
    const value = init[name]
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new Error(`gateway option ${name} must be a whole number of at least 1, got ${String(value)}`)
    }
  }
  for (const name of ['maxRetries', 'retryAfterSeconds'] as const) {
    const value = init[name]
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new Error(`gateway option ${name} must be a whole number of at least 0, got ${String(value)}`)
    }
  }
  if (init.port !== undefined && !(Number.isSafeInteger(init.port) && init.port >= 0 && init.port <= 65535)) {
    throw new Error(`gateway option port must be 0-65535, got ${String(init.port)}`)
  }
  if (init.defaultTimeoutMs !== undefined && init.defaultTimeoutMs > MAX_ROUTE_TIMEOUT_MS) {
    throw new Error(`gateway option defaultTimeoutMs must be at most ${MAX_ROUTE_TIMEOUT_MS}`)
  }
}

class StopRequested extends Error {
  constructor () {
    super('gateway is stopping')
  }
}

class HttpGateway implements Gateway {
  private readonly backend: GatewayBackend
  private readonly table = new RouteTable()
  private readonly turn = new TurnBatch()
  private readonly balancer = new ReplicaBalancer()
  private readonly limits: InFlightLimits
  private readonly retry: RetryPolicy
  private readonly defaultTimeoutMs: number
  private readonly retryAfter: string
  private readonly logger: FastifyBaseLogger | undefined
  private readonly onResponse: GatewayComponents['onResponse']
  /** the app each routed request went to, for onResponse */
  private readonly appOf = new WeakMap<object, string>()
  /** built anew by each start(): a closed Fastify instance cannot listen again */
  private fastify: FastifyInstance | undefined
  /** one controller per request waiting on a cell, so stop() can abort them all */
  private readonly pending = new Set<AbortController>()
  /** sockets whose request is waiting on a cell: their silence is not the client's fault */
  private readonly busySockets = new Set<Socket>()
  private boundAddress: string | undefined
  private started = false

  constructor (components: GatewayComponents, private readonly init: GatewayInit) {
    this.backend = components.backend
    this.limits = new InFlightLimits(init.maxInFlight ?? 1024, init.maxInFlightPerCell ?? 256)
    this.retry = { maxRetries: init.maxRetries ?? Infinity, backoffMs: 50, maxBackoffMs: 400 }
    this.defaultTimeoutMs = init.defaultTimeoutMs ?? 10_000
    this.retryAfter = String(init.retryAfterSeconds ?? 1)
    this.logger = components.logger
    this.onResponse = components.onResponse
  }

  get inFlight (): number {
    return this.limits.inFlight
  }

  async start (): Promise<void> {
    if (this.started) return
    const fastify = this.buildServer(this.logger)
    const host = this.init.host ?? '127.0.0.1'
    const port = this.init.port ?? 0
    try {
      await fastify.listen({ host, port })
    } catch (err) {
      await fastify.close()
      throw new Error(`gateway cannot listen on ${host}:${port}: ${(err as Error).message}`)
    }
    this.fastify = fastify
    const address = fastify.server.address() as AddressInfo
    const bound = address.family === 'IPv6' ? `[${address.address}]` : address.address
    this.boundAddress = `http://${bound}:${address.port}`
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    // requests waiting on cells answer 503 at once, so close() does not wait for them
    for (const controller of this.pending) controller.abort(new StopRequested())
    await this.fastify?.close()
    this.fastify = undefined
    this.boundAddress = undefined
  }

  address (): string {
    if (this.boundAddress == null) throw new Error('gateway is not started')
    return this.boundAddress
  }

  setRoutes (app: string, routes: readonly GatewayRoute[]): void {
    this.table.set(app, routes)
    this.logger?.info({ app, routes: routes.length }, 'gateway routes set')
  }

  removeApp (app: string): boolean {
    const removed = this.table.remove(app)
    if (removed) {
      this.balancer.forgetApp(app)
      this.logger?.info({ app }, 'gateway routes removed')
    }
    return removed
  }

  routes (): PublicRoute[] {
    return this.table.entries().map(({ app, route, publicPath }) => ({
      app,
      method: route.method,
      path: publicPath,
      cell: route.cell,
      cellMethod: route.cellMethod,
      timeoutMs: route.timeoutMs ?? this.defaultTimeoutMs
    }))
  }

  private buildServer (logger: FastifyBaseLogger | undefined): FastifyInstance {
    const init = this.init
    const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => {
      // Slow clients: headers and whole requests have deadlines, idle sockets are closed.
      const requestTimeout = init.requestTimeoutMs ?? 30_000
      const server = createServer({
        // Node requires headersTimeout <= requestTimeout
        headersTimeout: Math.min(init.headersTimeoutMs ?? 10_000, requestTimeout),
        requestTimeout,
        keepAliveTimeout: init.keepAliveTimeoutMs ?? 5_000,
        connectionsCheckingInterval: init.connectionsCheckingIntervalMs ?? 1_000
      }, handler)
      server.setTimeout(init.idleTimeoutMs ?? 60_000)
      // with a listener Node leaves the socket open; close it only if the silence is the client's
      server.on('timeout', (socket: Socket) => { if (!this.busySockets.has(socket)) socket.destroy() })
      return server
    }
    const fastify = Fastify({
      ...(logger != null ? { loggerInstance: logger } : { logger: false }),
      serverFactory,
      bodyLimit: init.bodyLimit ?? MiB,
      genReqId: requestIdOf,
      exposeHeadRoutes: false,
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      onProtoPoisoning: 'error',
      onConstructorPoisoning: 'error',
      // a URL the router cannot decode (bad percent-encoding) ends here, before any hook
      frameworkErrors: (err, request, reply) => {
        const message = err.code === 'FST_ERR_BAD_URL' ? `invalid path: ${err.message}` : err.message
        request.log.info({ err: message }, 'bad request')
        void (reply as FastifyReply).code(400).header('x-request-id', request.id).send({ error: message })
      }
    })
    // only JSON bodies reach cells, and only within the nesting bound
    fastify.removeContentTypeParser('text/plain')
    useBoundedJsonBodies(fastify)

    // a callback hook, not an async one: it runs on every request
    fastify.addHook('onRequest', (request, reply, done) => {
      reply.header('x-request-id', request.id)
      const reason = checkRequestPath(pathOf(request.url))
      if (reason == null) {
        done()
        return
      }
      request.log.info({ url: request.url, reason }, 'refused path')
      void reply.code(400).send({ error: `invalid path: ${reason}` })
    })
    const onResponse = this.onResponse
    if (onResponse !== undefined) {
      fastify.addHook('onResponse', (request, reply, done) => {
        onResponse(this.appOf.get(request.raw) ?? '', reply.statusCode)
        done()
      })
    }
    fastify.setErrorHandler((err: FastifyError, request, reply) => {
      let status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500
      let message = err.message
      // SPEC §5: an invalid body is a 400, and a body that is not JSON is an invalid body
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
        status = 400
        message = `unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}: send a JSON body with content-type application/json`
      }
      if (status >= 500) request.log.error({ err }, 'gateway error')
      else request.log.info({ err: message, status }, 'bad request')
      void reply.code(status).send({ error: message })
    })
    fastify.setNotFoundHandler((request, reply) => {
      void reply.code(404).send({ error: `no route for ${request.method} ${pathOf(request.url)}` })
    })

    fastify.get('/_stem/health', async () => ({
      status: 'ok',
      apps: this.table.appCount,
      routes: this.table.entries().length,
      inFlight: this.limits.inFlight
    }))
    fastify.get('/_stem/routes', async () => ({ routes: this.routes() }))
    fastify.route({ method: [...ROUTE_METHODS], url: '*', handler: async (request, reply) => this.serve(request, reply) })
    return fastify
  }

  private async serve (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // a request whose body was still arriving when stop() aborted the others
    if (!this.started) return await this.unavailable(reply, 'gateway is stopping')
    const path = pathOf(request.url)
    const match = this.table.match(request.method, path)
    if (match == null) return await reply.code(404).send({ error: `no route for ${request.method} ${path}` })
    const { app } = match.entry
    const route = streamTarget(match.entry.route, request.query)
    this.appOf.set(request.raw, app)
    const keyProblem = route.key !== undefined ? invalidKey(match.params[route.key]) : undefined
    if (keyProblem !== undefined) return await reply.code(400).send({ error: keyProblem })
    const release = this.limits.tryEnter(`${app}/${route.cell}`)
    if (release == null) {
      request.log.warn({ app, cell: route.cell }, 'overloaded: too many requests in flight')
      return await this.unavailable(reply, `too many requests in flight for ${app}/${route.cell}`)
    }
    // the client going away (or the gateway stopping) aborts the ask
    const controller = new AbortController()
    const onClose = (): void => { if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection')) }
    reply.raw.once('close', onClose)
    this.pending.add(controller)
    const socket = request.raw.socket
    this.busySockets.add(socket)
    let outcome: InvokeOutcome
    try {
      await this.turn.wait()
      outcome = await invokeCell(this.backend, this.balancer, {
        app,
        cell: route.cell,
        ...(route.key !== undefined ? { key: match.params[route.key] } : {}),
        cellMethod: route.cellMethod,
        arg: { params: match.params, query: { ...(request.query as Record<string, unknown>) }, body: request.body ?? null },
        messageId: randomUUID(),
        timeoutMs: route.timeoutMs ?? this.defaultTimeoutMs,
        retryable: SAFE_METHODS.has(request.method) || this.backend.dedupesByMessageId === true,
        controller
      }, this.retry)
    } finally {
      this.pending.delete(controller)
      this.busySockets.delete(socket)
      release()
      reply.raw.off('close', onClose)
    }
    const target = `${app}/${route.cell}.${route.cellMethod}`
    switch (outcome.kind) {
      case 'ok': {
        const response = outcome.value instanceof CellResponse ? outcome.value : undefined
        let json: string
        try {
          json = JSON.stringify((response !== undefined ? response.body : outcome.value) ?? null)
        } catch (err) {
          request.log.warn({ target, err: (err as Error).message }, 'cell result is not JSON')
          return await reply.code(500).send({ error: `result of ${target} is not JSON: ${(err as Error).message}` })
        }
        if (response !== undefined) void reply.headers(response.headers)
        return await reply.code(response?.status ?? 200).type('application/json; charset=utf-8').send(json)
      }
      case 'cell-error': {
        // the message and where it came from, never the stack: no internals to HTTP clients
        const failure = outcome.failure
        request.log.info({ target, err: outcome.message }, 'cell error')
        // a full stream partition: back-pressure, the producer may try again shortly
        if (failure?.status === 429) void reply.header('retry-after', this.retryAfter)
        return await reply.code(failure?.status ?? 500).send({ error: outcome.message, ...(failure !== undefined ? { cell: failure.cell, method: failure.method } : {}) })
      }
      case 'timeout':
        request.log.warn({ target, timeoutMs: route.timeoutMs ?? this.defaultTimeoutMs }, 'cell timed out')
        return await reply.code(504).send({ error: `${target} did not answer within ${route.timeoutMs ?? this.defaultTimeoutMs} ms` })
      case 'unavailable':
        request.log.warn({ target, attempts: outcome.attempts, err: outcome.message }, 'cell unavailable')
        return await this.unavailable(reply, `${target} is unavailable: ${outcome.message}`)
      case 'overloaded':
        request.log.warn({ target, err: outcome.message }, 'cell overloaded')
        return await this.unavailable(reply, `${target} is overloaded: ${outcome.message}`)
      case 'aborted':
        // the client is gone or the gateway is stopping; a 503 is the honest answer if anyone still listens
        request.log.info({ target, reason: (outcome.reason as Error | undefined)?.message }, 'request aborted')
        return await this.unavailable(reply, (outcome.reason as Error | undefined)?.message ?? 'request aborted')
    }
  }

  private async unavailable (reply: FastifyReply, message: string): Promise<FastifyReply> {
    return await reply.code(503).header('retry-after', this.retryAfter).send({ error: message })
  }
}

/** a stream route's partition for this request's `?key=`; any other route as it is */
function streamTarget (route: GatewayRoute, query: unknown): GatewayRoute {
  if (route.partitions === undefined || route.partitions < 1) return route
  const key = (query as Record<string, unknown> | null)?.key
  return { ...route, cell: partitionCell(route.cell, pickPartition(typeof key === 'string' && key !== '' ? key : null, route.partitions)) }
}

function requestIdOf (req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID()
}

/** why a path parameter cannot be a keyed cell's key (empty, too long, control characters), or undefined */
function invalidKey (key: string | undefined): string | undefined {
  try {
    encodeKey(key ?? '')
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}
