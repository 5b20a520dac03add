// The gateway's view of one app's HTTP routes (SPEC §5 `routes`: `METHOD PATH -> cell.method`)
// and the checks a publish runs before anything is published: a route set that validates
// here is accepted by the live route table as is.
import createRouter from 'find-my-way'

/** One parsed manifest route, e.g. `GET /items/:id -> store.get`. */
export interface GatewayRoute {
  /** HTTP method, upper case */
  method: string
  /** path inside the app, starting with `/`; `:name` segments are path parameters */
  path: string
  /** cell name inside the app */
  cell: string
  /** the cell's method to call */
  cellMethod: string
  /** a keyed cell's route: the path parameter whose value is the key (`cart[:id].get`) */
  key?: string
  /** how long the gateway waits for the cell (ms); the gateway's default when absent.
   * Set it from the cell's `timeout` limit plus a margin for the mesh round trip. */
  timeoutMs?: number
  /** a stream route: `cell` is the stream, each request goes to the partition of its `?key=` (cells/streams/partition.ts) */
  partitions?: number
}

export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type RouteMethod = typeof ROUTE_METHODS[number]

/** App names become the first path segment, so they must be URL-safe and cannot be `_stem`. */
const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/i
const STATIC_SEGMENT = /^[A-Za-z0-9._~!$&'+,=@-]+$/
const PARAM_SEGMENT = /^:[A-Za-z_][A-Za-z0-9_]{0,63}$/
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,127}$/
/** a manifest's cell names (`order-api`: a-z, 0-9 and '-') and identifiers */
const CELL_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]{0,127}$/
/** the longest a route may wait for its cell: longer work belongs in a job, not an HTTP request */
export const MAX_ROUTE_TIMEOUT_MS = 10 * 60_000

export function isRouteMethod (method: string): method is RouteMethod {
  return (ROUTE_METHODS as readonly string[]).includes(method)
}

/** Throws a one-line error naming the app, the route and what is wrong. */
export function validateAppName (app: string): void {
  if (typeof app !== 'string' || !APP_NAME.test(app)) {
    throw new Error(`invalid app name ${JSON.stringify(app)}: use 1-63 letters, digits and dashes, starting with a letter or digit`)
  }
}

/**
 * Checks an app's whole route set: app name, each route's method, path, cell, method and
 * timeout, and clashes (the same METHOD and path twice, or two paths that differ only in
 * parameter names such as `/items/:id` and `/items/:name`). Throws a one-line error on the
 * first problem; returns normally when the set can be installed.
 */
export function validateRoutes (app: string, routes: readonly GatewayRoute[]): void {
  validateAppName(app)
  if (!Array.isArray(routes)) throw new Error(`app ${app}: routes must be a list`)
  // find-my-way (the router the live table uses) is the judge of clashes, so whatever
  // passes here installs cleanly there.
  const router = createRouter({ ignoreTrailingSlash: true })
  const seen = new Map<string, number>()
  routes.forEach((route, index) => {
    const where = `app ${app}: route ${index + 1} (${describeRoute(route)})`
    checkRoute(route, where)
    const shape = `${route.method} ${routeShape(route.path)}`
    const earlier = seen.get(shape)
    if (earlier !== undefined) {
      throw new Error(`${where} clashes with route ${earlier + 1} (${describeRoute(routes[earlier])}): both match the same requests`)
    }
    seen.set(shape, index)
    try {
      router.on(route.method as RouteMethod, route.path, noop)
    } catch (err) {
      throw new Error(`${where} cannot be routed: ${(err as Error).message}`)
    }
  })
}

export function describeRoute (route: GatewayRoute | undefined): string {
  if (route == null || typeof route !== 'object') return String(route)
  return `${String(route.method)} ${String(route.path)} -> ${String(route.cell)}.${String(route.cellMethod)}`
}

function checkRoute (route: GatewayRoute, where: string): void {
  if (route == null || typeof route !== 'object') throw new Error(`${where}: not a route object`)
  if (typeof route.method !== 'string' || !isRouteMethod(route.method)) {
    throw new Error(`${where}: method must be one of ${ROUTE_METHODS.join(', ')}`)
  }
  checkPath(route.path, where)
  if (typeof route.cell !== 'string' || !CELL_NAME.test(route.cell)) {
    throw new Error(`${where}: cell must be a cell name (letters, digits, -, _ and $)`)
  }
  if (typeof route.cellMethod !== 'string' || !IDENTIFIER.test(route.cellMethod)) {
    throw new Error(`${where}: cell method must be a method name (letters, digits, _ and $)`)
  }
  if (route.timeoutMs !== undefined &&
      (typeof route.timeoutMs !== 'number' || !Number.isInteger(route.timeoutMs) || route.timeoutMs < 1 || route.timeoutMs > MAX_ROUTE_TIMEOUT_MS)) {
    throw new Error(`${where}: timeoutMs must be a whole number of milliseconds from 1 to ${MAX_ROUTE_TIMEOUT_MS}`)
  }
}

function checkPath (path: unknown, where: string): void {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new Error(`${where}: path must start with /`)
  if (path === '/') return
  const segments = path.slice(1).split('/')
  const params = new Set<string>()
  segments.forEach((segment, i) => {
    // a trailing slash is allowed (and ignored); an empty segment elsewhere is a double slash
    if (segment === '' && i === segments.length - 1) return
    if (segment === '') throw new Error(`${where}: path has an empty segment (double slash)`)
    if (segment === '.' || segment === '..') throw new Error(`${where}: path has a dot segment "${segment}"`)
    if (segment.startsWith(':')) {
      if (!PARAM_SEGMENT.test(segment)) throw new Error(`${where}: parameter "${segment}" must be : followed by a name (letters, digits, _)`)
      if (params.has(segment)) throw new Error(`${where}: parameter "${segment}" appears twice`)
      params.add(segment)
      return
    }
    if (!STATIC_SEGMENT.test(segment)) {
      throw new Error(`${where}: path segment "${segment}" has characters a route cannot match literally (no wildcards, spaces or %)`)
    }
  })
}

/** `/items/:id/tags` → `/items/:/tags`: two routes with the same shape match the same requests. */
function routeShape (path: string): string {
  return path.replace(/\/+$/, '').split('/').map(s => s.startsWith(':') ? ':' : s).join('/')
}

function noop (): void {}
