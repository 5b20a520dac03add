// A canonical encoding of a manifest and its sha256: the same app always encodes to the
// same bytes, whatever the YAML's key order, route order or spelling of sizes ("1GiB" and
// "1024MiB" are equal). Publishing a manifest whose hash equals the running one changes
// nothing. Deterministic JSON is enough here: the encoding is hashed and compared, and the
// manifest travels as owner-signed bytes whose encoding the signer chose.
import { createHash } from 'node:crypto'
import { routeTarget } from './manifest.js'
import type { AppManifest, CellSpec, Route } from './manifest.js'

function compareRoutes (a: Route, b: Route): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : a.method < b.method ? -1 : a.method > b.method ? 1 : 0
}

function canonicalCell (spec: CellSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (spec.bundle !== undefined) out.bundle = spec.bundle
  out.clones = spec.clones
  // left out when absent: manifests published before the field existed keep their hash
  if (spec.autoscale !== undefined) out.autoscale = { lag: spec.autoscale.lag, max: spec.autoscale.max, min: spec.autoscale.min }
  out.code = spec.code
  // the default is left out: manifests published before the field existed keep their hash
  if (spec.durability !== undefined && spec.durability !== 'disk') out.durability = spec.durability
  if (spec.links !== undefined) out.links = [...new Set(spec.links)].sort()
  out.mailbox = spec.mailbox
  out.memory = spec.memory
  out.replicas = spec.replicas
  out.timeout = spec.timeout
  return out
}

/** Deterministic JSON of a manifest: keys sorted, routes sorted by (path, method). */
export function canonicalManifest (m: AppManifest): string {
  const cells: Record<string, unknown> = {}
  for (const name of Object.keys(m.cells).sort()) cells[name] = canonicalCell(m.cells[name])
  const routes = [...m.routes].sort(compareRoutes).map(r => `${r.method} ${r.path} -> ${routeTarget(r)}`)
  return JSON.stringify({ app: m.app, cells, routes })
}

/** sha256 (hex) of the canonical encoding. */
export function manifestHash (m: AppManifest): string {
  return createHash('sha256').update(canonicalManifest(m)).digest('hex')
}

/** A copy of the manifest with each cell's built bundle hash filled in. */
export function withBundles (m: AppManifest, bundles: Record<string, string>): AppManifest {
  const cells: Record<string, CellSpec> = {}
  for (const [name, spec] of Object.entries(m.cells)) {
    const bundle = bundles[name]
    if (bundle === undefined) throw new Error(`no bundle for cell ${name}`)
    cells[name] = { ...spec, bundle }
  }
  return { ...m, cells }
}
