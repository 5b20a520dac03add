// What changed between two versions of an app's manifest: the leader turns this into
// placement changes (cells added/removed, replicas, clones, limits) and rolling code
// updates (code changed), and the gateway into a new route table.
import { routeTarget } from './manifest.js'
import type { AppManifest, CellSpec, Route } from './manifest.js'

export interface CountChange { cell: string, from: number, to: number }

export interface ManifestDiff {
  /** true when none of the lists below has an entry (nothing to roll out) */
  unchanged: boolean
  cellsAdded: string[]
  cellsRemoved: string[]
  /** bundle hash differs (or, when either side has no bundle yet, the code path does) */
  codeChanged: string[]
  /** memory, timeout, mailbox or links differ: the instances restart with new limits */
  limitsChanged: string[]
  replicasChanged: CountChange[]
  clonesChanged: CountChange[]
  routesAdded: Route[]
  routesRemoved: Route[]
}

function codeDiffers (a: CellSpec, b: CellSpec): boolean {
  if (a.bundle !== undefined && b.bundle !== undefined) return a.bundle !== b.bundle
  return a.code !== b.code || a.bundle !== b.bundle
}

function linksKey (links: string[] | undefined): string {
  return links === undefined ? '*' : JSON.stringify([...new Set(links)].sort())
}

function limitsDiffer (a: CellSpec, b: CellSpec): boolean {
  return a.memory !== b.memory || a.timeout !== b.timeout || a.mailbox !== b.mailbox || linksKey(a.links) !== linksKey(b.links)
}

function routeKey (r: Route): string {
  return `${r.method} ${r.path} -> ${routeTarget(r)}`
}

export function diffManifests (before: AppManifest, after: AppManifest): ManifestDiff {
  if (before.app !== after.app) throw new Error(`cannot diff manifests of different apps (${before.app}, ${after.app})`)
  const d: ManifestDiff = {
    unchanged: false,
    cellsAdded: [],
    cellsRemoved: [],
    codeChanged: [],
    limitsChanged: [],
    replicasChanged: [],
    clonesChanged: [],
    routesAdded: [],
    routesRemoved: []
  }
  const names = [...new Set([...Object.keys(before.cells), ...Object.keys(after.cells)])].sort()
  for (const name of names) {
    const a = before.cells[name]
    const b = after.cells[name]
    if (a === undefined) { d.cellsAdded.push(name); continue }
    if (b === undefined) { d.cellsRemoved.push(name); continue }
    if (codeDiffers(a, b)) d.codeChanged.push(name)
    if (limitsDiffer(a, b)) d.limitsChanged.push(name)
    if (a.replicas !== b.replicas) d.replicasChanged.push({ cell: name, from: a.replicas, to: b.replicas })
    if (a.clones !== b.clones) d.clonesChanged.push({ cell: name, from: a.clones, to: b.clones })
  }
  const beforeRoutes = new Map(before.routes.map(r => [routeKey(r), r]))
  const afterRoutes = new Map(after.routes.map(r => [routeKey(r), r]))
  for (const k of [...afterRoutes.keys()].sort()) if (!beforeRoutes.has(k)) d.routesAdded.push(afterRoutes.get(k) as Route)
  for (const k of [...beforeRoutes.keys()].sort()) if (!afterRoutes.has(k)) d.routesRemoved.push(beforeRoutes.get(k) as Route)
  d.unchanged = d.cellsAdded.length + d.cellsRemoved.length + d.codeChanged.length + d.limitsChanged.length +
    d.replicasChanged.length + d.clonesChanged.length + d.routesAdded.length + d.routesRemoved.length === 0
  return d
}
