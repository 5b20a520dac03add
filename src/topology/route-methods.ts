// Publish's check that every route targets a public method of its cell's class: a route to
// a method that does not exist would publish fine and fail at call time with a 500.
import type { AppManifest, Route } from './manifest.js'

export interface CellClass {
  /** e.g. `class Todos` */
  name: string
  /** the file it was built from, as the manifest names it */
  code: string
  methods: string[]
}

/** One line per route whose method the cell's class does not have, naming the route and the method. */
export function routeMethodProblems (manifest: Pick<AppManifest, 'routes'>, classes: Record<string, CellClass>): string[] {
  const problems: string[] = []
  manifest.routes.forEach((route: Route, i) => {
    const cls = classes[route.cell]
    if (cls === undefined || cls.methods.includes(route.handler)) return
    const has = cls.methods.length === 0 ? 'it has none' : `it has: ${cls.methods.join(', ')}`
    problems.push(`routes[${i}] "${route.method} ${route.path} -> ${route.cell}.${route.handler}": ${cls.name} of ${route.cell} (${cls.code}) has no public method "${route.handler}" (${has})`)
  })
  return problems
}
