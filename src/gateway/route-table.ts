// The live route table: every app's routes under `/<app>`, so two apps never clash. Each
// change builds a fresh router and swaps it in whole, so a lookup always sees one
// consistent table and a refused update leaves the old one serving.
import createRouter from 'find-my-way'
import { validateRoutes, type GatewayRoute, type RouteMethod } from './routes.js'

export interface RouteEntry {
  app: string
  route: GatewayRoute
  /** the public path: `/<app>` + the route's path */
  publicPath: string
}

export interface RouteMatch {
  entry: RouteEntry
  params: Record<string, string>
}

type Router = ReturnType<typeof createRouter>

/** find-my-way's default is 100; a param longer than this does not match (404) */
const MAX_PARAM_LENGTH = 500

export class RouteTable {
  private apps = new Map<string, readonly RouteEntry[]>()
  private router: Router = newRouter()

  /** Replaces an app's routes (validated first: throws, changing nothing, if invalid). */
  set (app: string, routes: readonly GatewayRoute[]): void {
    validateRoutes(app, routes)
    const entries = routes.map(route => ({ app, route: { ...route }, publicPath: publicPath(app, route.path) }))
    const next = new Map(this.apps)
    next.set(app, entries)
    this.install(next)
  }

  /** Removes an app's routes; returns whether it had any. */
  remove (app: string): boolean {
    if (!this.apps.has(app)) return false
    const next = new Map(this.apps)
    next.delete(app)
    this.install(next)
    return true
  }

  /** `path` is the request path without its query string. HEAD falls back to the GET route. */
  match (method: string, path: string): RouteMatch | undefined {
    let found = this.router.find(method as RouteMethod, path)
    if (found == null && method === 'HEAD') found = this.router.find('GET', path)
    if (found == null) return undefined
    const params: Record<string, string> = {}
    for (const [name, value] of Object.entries(found.params)) {
      if (value !== undefined) params[name] = value
    }
    return { entry: found.store as RouteEntry, params }
  }

  entries (): RouteEntry[] {
    return [...this.apps.values()].flat()
  }

  get appCount (): number {
    return this.apps.size
  }

  private install (apps: Map<string, readonly RouteEntry[]>): void {
    const router = newRouter()
    for (const entries of apps.values()) {
      for (const entry of entries) router.on(entry.route.method as RouteMethod, entry.publicPath, noop, entry)
    }
    this.apps = apps
    this.router = router
  }
}

function newRouter (): Router {
  return createRouter({ ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH })
}

function publicPath (app: string, path: string): string {
  return path === '/' ? `/${app}` : `/${app}${path}`
}

function noop (): void {}
