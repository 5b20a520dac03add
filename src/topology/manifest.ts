// The app manifest (SPEC §5): YAML text → a typed, validated AppManifest, or a
// ManifestError naming the file, the field and the reason of every problem found, so an
// invalid manifest is refused before anything is published.
//
// Field rules (defaults in brackets):
//   app                 lowercase DNS-label-like name (a-z, 0-9, '-', ≤ 63, starts with a letter)
//   cells.<name>        same naming rule; 1..256 cells
//     code              relative path of a .js or .ts module, resolved against the manifest's directory
//     replicas [1]      integer 0..1000 — serving instances
//     clones [1]        integer 0..7 — warm standbys per instance, on other nodes (none where the
//                       mesh has no other node with room: the instance then runs alone). Every
//                       reply waits until a clone holds the new state (SPEC §4).
//     durability [disk] disk | memory — disk: a reply leaves once the state it produced is
//                       fsynced on the primary and on one clone; memory: once one clone holds
//                       it in memory, the disks follow (README "Durability").
//     memory [32MiB]    isolate memory limit, 8MiB..2GiB
//     timeout [1s]      CPU time per message, 1ms..60s
//     mailbox [1000]    queued messages per instance, 1..1000000
//     keyed [false]     true: one instance per key, addressed app/cell/<key>, activated on demand;
//                       `replicas` is then its fixed number of shards, 1..1024 [16] (cells/keys.ts)
//     idle [5m]         keyed cells: passivate a key after this long without messages, 1s..30d
//     links [absent]    optional list of allowed `stem.ask`/`stem.tell` targets: `cell` (same
//                       app) or `app/cell`. Absent means any target; present (even empty) means
//                       only those (a cell may always address itself).
//   routes              list of `METHOD PATH -> cell.method`; METHOD in GET/POST/PUT/PATCH/DELETE;
//                       PATH starts with '/', segments are literal or `:param`. A keyed cell is
//                       routed as `cell[:param].method`: the key is that path parameter. Matching does
//                       not depend on order (literal segments win over params), so two routes of
//                       the same method and shape are an error. `METHOD PATH -> stream NAME`
//                       (POST/PUT) appends the body to a stream (topology/streams/).
//   streams.<name>      { partitions [4] 1..32, retention [10000]: records per partition or a duration }
//   cells.<name>.consumes  list of stream names or { stream, mode: group | broadcast }; each stream
//                       has a dead-letter stream `<name>.dead` too, which cells may consume
//   cells.<name>.autoscale  { min [1], max, lag }: a group consumer's replicas follow its lag
//                       (replicas [min] must lie within min..max)
// Unknown fields anywhere are errors: a typo must not pass silently.
import { isAbsolute, basename, dirname, resolve } from 'node:path'
import { readFile, stat } from 'node:fs/promises'
import { LineCounter, isScalar, parseDocument, visit } from 'yaml'
import { formatDuration, formatSize, parseDuration, parseSize } from '../util/units.js'
import { DEFAULT_IDLE_MS, DEFAULT_SHARDS, MAX_SHARDS } from '../cells/keys.js'
import { checkAutoscale, checkConsumes, checkStreams, reservedCellNames, STREAM_ROUTE_HANDLER } from './streams/stream-manifest.js'
import type { AutoscaleSpec, Consumption, StreamSpec } from './streams/stream-manifest.js'
import { partitionCell } from '../cells/streams/partition.js'
import { isDeadLetterStream } from './streams/dead-letter.js'

export const httpMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const
export type HttpMethod = typeof httpMethods[number]
export type Durability = 'disk' | 'memory'

export interface CellSpec {
  /** module path as written in the manifest, relative to the manifest file */
  code: string
  replicas: number
  clones: number
  /** disk (default) | memory: what a reply waits for (README "Durability") */
  durability?: Durability
  /** isolate memory limit, bytes */
  memory: number
  /** CPU time per message, ms */
  timeout: number
  mailbox: number
  /** one instance per key (SPEC §4): `replicas` is the number of shards */
  keyed?: boolean
  /** keyed cells: ms without messages after which a key is passivated */
  idle?: number
  /** allowed ask/tell targets (`cell` or `app/cell`); undefined = any */
  links?: string[]
  /** streams this cell consumes (topology/streams/stream-manifest.ts) */
  consumes?: Consumption[]
  /** a consumer's replicas follow its group's lag within min..max (topology/streams/autoscale.ts) */
  autoscale?: AutoscaleSpec
  /** sha256 (hex) of the built bundle; set by the publisher, absent in a parsed manifest */
  bundle?: string
}

export interface Route {
  method: HttpMethod
  /** e.g. `/orders/:id` */
  path: string
  cell: string
  handler: string
  /** a keyed cell's route (`cell[:param].method`): the path parameter that holds the key */
  key?: string
  /** a `-> stream NAME` route: `cell` is then the stream's partition 0 and `handler` STREAM_ROUTE_HANDLER */
  stream?: string
}

/** A route's target as the manifest writes it: `cell.method` or `cell[:param].method`. */
export function routeTarget (r: Pick<Route, 'cell' | 'handler' | 'key'>): string {
  return `${r.cell}${r.key !== undefined ? `[:${r.key}]` : ''}.${r.handler}`
}

export interface AppManifest {
  app: string
  cells: Record<string, CellSpec>
  routes: Route[]
  /** durable partitioned streams (SPEC §5 `streams`) */
  streams?: Record<string, StreamSpec>
}

export const manifestLimits = {
  maxFileBytes: 256 * 1024,
  maxAliases: 50,
  maxCells: 256,
  maxRoutes: 1024,
  maxLinks: 256,
  maxReplicas: 1000,
  maxClones: 7,
  minMemory: 8 * 2 ** 20,
  maxMemory: 2 * 2 ** 30,
  minTimeout: 1,
  maxTimeout: 60_000,
  maxMailbox: 1_000_000,
  maxPathLength: 1024
} as const

export const cellDefaults = { replicas: 1, clones: 1, durability: 'disk', memory: 32 * 2 ** 20, timeout: 1000, mailbox: 1000 } as const

export interface ManifestIssue {
  /** dotted field path (`cells.counter.memory`, `routes[1]`) or `line:col` for YAML syntax */
  field: string
  reason: string
}

/** Every problem of one manifest; `message` is the first one as a single line. */
export class ManifestError extends Error {
  readonly file: string
  readonly issues: ManifestIssue[]

  constructor (file: string, issues: ManifestIssue[]) {
    const lines = issues.map(i => `${file}: ${i.field}: ${i.reason}`)
    super(lines[0] + (lines.length > 1 ? ` (and ${lines.length - 1} more problem${lines.length > 2 ? 's' : ''})` : ''))
    this.name = 'ManifestError'
    this.file = file
    this.issues = issues
  }

  /** one line per problem */
  lines (): string[] {
    return this.issues.map(i => `${this.file}: ${i.field}: ${i.reason}`)
  }
}

const namePattern = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const handlerPattern = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const literalSegment = /^[A-Za-z0-9._~-]+$/
const paramSegment = /^:[A-Za-z_][A-Za-z0-9_]*$/
const routePattern = /^(\S+)\s+(\S+)\s+->\s+(\S+)$/
const keyedTargetPattern = /^([^[\]]+)\[:([A-Za-z_][A-Za-z0-9_]*)\]$/
const cellFields = new Set(['code', 'replicas', 'clones', 'durability', 'memory', 'timeout', 'mailbox', 'links', 'keyed', 'idle', 'consumes', 'autoscale'])
const topFields = new Set(['app', 'cells', 'routes', 'streams'])
const streamRoutePattern = /^(\S+)\s+(\S+)\s+->\s+stream\s+(\S+)$/

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)
  if (v === null || v === undefined) return String(v)
  if (Array.isArray(v)) return 'a list'
  if (ArrayBuffer.isView(v)) return 'binary data'
  if (typeof v === 'object') return 'a mapping'
  return String(v)
}

/** Why `name` is not a valid app or cell name, or undefined. */
export function nameProblem (name: string): string | undefined {
  if (namePattern.test(name)) return undefined
  return `${show(name)} is not a valid name (lowercase letters, digits and '-', starting with a letter, at most 63 characters)`
}

class Checker {
  readonly issues: ManifestIssue[] = []
  add (field: string, reason: string): void { this.issues.push({ field, reason }) }

  integer (field: string, v: unknown, min: number, max: number, fallback: number): number {
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v)) { this.add(field, `${show(v)} is not an integer`); return fallback }
    if (v < min || v > max) { this.add(field, `${v} is out of range (${min}..${max})`); return fallback }
    return v
  }

  unit (field: string, v: unknown, parse: (s: string) => number, format: (n: number) => string, min: number, max: number, fallback: number): number {
    if (v === undefined) return fallback
    let n: number
    try {
      n = parse(v as string)
    } catch (err) {
      this.add(field, (err as Error).message); return fallback
    }
    if (n < min || n > max) { this.add(field, `${show(v)} is out of range (${format(min)}..${format(max)})`); return fallback }
    return n
  }

  unknownFields (prefix: string, obj: Record<string, unknown>, known: Set<string>): void {
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) this.add(prefix === '' ? key : `${prefix}.${key}`, `unknown field (expected one of ${[...known].join(', ')})`)
    }
  }
}

function checkCode (c: Checker, field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) { c.add(field, v === undefined ? 'is required (path of the cell\'s .js or .ts module)' : `${show(v)} is not a path`); return '' }
  if (v.includes('\0') || v.length > manifestLimits.maxPathLength) { c.add(field, `${show(v)} is not a usable path`); return v }
  if (isAbsolute(v)) c.add(field, `${show(v)} must be relative to the manifest file`)
  else if (!/\.(js|ts)$/.test(v)) c.add(field, `${show(v)} must be a .js or .ts file`)
  return v
}

function checkLinks (c: Checker, field: string, v: unknown, app: string, cellNames: Set<string>): string[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v)) { c.add(field, `${show(v)} is not a list of cell names`); return undefined }
  if (v.length > manifestLimits.maxLinks) { c.add(field, `has ${v.length} entries (at most ${manifestLimits.maxLinks})`); return undefined }
  const links: string[] = []
  v.forEach((entry, i) => {
    const f = `${field}[${i}]`
    if (typeof entry !== 'string') { c.add(f, `${show(entry)} is not a cell name`); return }
    const parts = entry.split('/')
    if (parts.length > 2 || parts.some(p => nameProblem(p) !== undefined)) { c.add(f, `${show(entry)} is not \`cell\` or \`app/cell\``); return }
    if ((parts.length === 1 || parts[0] === app) && !cellNames.has(parts[parts.length - 1])) { c.add(f, `cell ${show(parts[parts.length - 1])} is not defined in cells`); return }
    const normalized = parts.length === 2 && parts[0] === app ? parts[1] : entry
    if (!links.includes(normalized)) links.push(normalized)
  })
  return links.sort()
}

function checkCell (c: Checker, name: string, v: unknown, app: string, cellNames: Set<string>, streams: Record<string, StreamSpec>): CellSpec | undefined {
  const prefix = `cells.${name}`
  if (!isPlainObject(v)) { c.add(prefix, `${show(v)} is not a mapping (expected code, replicas, clones, durability, memory, timeout, mailbox, links, consumes)`); return undefined }
  c.unknownFields(prefix, v, cellFields)
  const L = manifestLimits
  const spec: CellSpec = {
    code: checkCode(c, `${prefix}.code`, v.code),
    replicas: c.integer(`${prefix}.replicas`, v.replicas, 0, L.maxReplicas, cellDefaults.replicas),
    clones: c.integer(`${prefix}.clones`, v.clones, 0, L.maxClones, cellDefaults.clones),
    durability: checkDurability(c, `${prefix}.durability`, v.durability),
    memory: c.unit(`${prefix}.memory`, v.memory, parseSize, formatSize, L.minMemory, L.maxMemory, cellDefaults.memory),
    timeout: c.unit(`${prefix}.timeout`, v.timeout, parseDuration, formatDuration, L.minTimeout, L.maxTimeout, cellDefaults.timeout),
    mailbox: c.integer(`${prefix}.mailbox`, v.mailbox, 1, L.maxMailbox, cellDefaults.mailbox)
  }
  const links = checkLinks(c, `${prefix}.links`, v.links, app, cellNames)
  if (links !== undefined) spec.links = links
  checkKeyed(c, prefix, v, spec)
  const consumes = checkConsumes((f, r) => { c.add(f, r) }, `${prefix}.consumes`, v.consumes, streams)
  if (consumes !== undefined && consumes.length > 0) {
    // a keyed cell's instances are shards of many keys: one cursor per shard would not say which key saw a record
    if (spec.keyed === true) c.add(`${prefix}.consumes`, 'a keyed cell cannot consume streams: consume with an unkeyed cell that asks the keys')
    else spec.consumes = consumes
  }
  const scaled = checkAutoscale((f, r) => { c.add(f, r) }, `${prefix}.autoscale`, v.autoscale, spec.consumes, v.replicas === undefined ? undefined : spec.replicas, L.maxReplicas)
  if (scaled !== undefined) {
    spec.autoscale = scaled.autoscale
    spec.replicas = scaled.replicas
  }
  return spec
}

/** `keyed` and `idle`: a keyed cell's replicas are its shards (at least one, default DEFAULT_SHARDS) */
function checkKeyed (c: Checker, prefix: string, v: Record<string, unknown>, spec: CellSpec): void {
  if (v.keyed === undefined || v.keyed === false) {
    if (v.idle !== undefined) c.add(`${prefix}.idle`, 'only keyed cells are passivated (add keyed: true)')
    return
  }
  if (v.keyed !== true) { c.add(`${prefix}.keyed`, `${show(v.keyed)} is not true or false`); return }
  spec.keyed = true
  spec.idle = c.unit(`${prefix}.idle`, v.idle, parseDuration, formatDuration, 1000, 30 * 86_400_000, DEFAULT_IDLE_MS)
  if (v.replicas === undefined) spec.replicas = DEFAULT_SHARDS
  else if (spec.replicas < 1 || spec.replicas > MAX_SHARDS) c.add(`${prefix}.replicas`, `a keyed cell has 1–${MAX_SHARDS} shards (its replicas), got ${spec.replicas}`)
}

function checkDurability (c: Checker, field: string, v: unknown): Durability {
  if (v === undefined) return cellDefaults.durability
  if (v === 'disk' || v === 'memory') return v
  c.add(field, `${show(v)} is not a durability level (expected disk or memory)`)
  return cellDefaults.durability
}

/** Parses one `METHOD PATH -> cell.method` line; reasons go to the checker. */
function checkRoute (c: Checker, field: string, v: unknown, cellNames: Set<string>, streams: Record<string, StreamSpec>): Route | undefined {
  if (typeof v !== 'string') { c.add(field, `${show(v)} is not a route (use e.g. "GET /count -> counter.get")`); return undefined }
  const s = streamRoutePattern.exec(v.trim())
  if (s != null) return checkStreamRoute(c, field, s[1], s[2], s[3], streams)
  const m = routePattern.exec(v.trim())
  if (m == null) { c.add(field, `${show(v)} is not a route (use e.g. "GET /count -> counter.get")`); return undefined }
  const [, method, path, target] = m
  if (!(httpMethods as readonly string[]).includes(method)) { c.add(field, `method ${show(method)} is not one of ${httpMethods.join(', ')}`); return undefined }
  const pathProblem = routePathProblem(path)
  if (pathProblem !== undefined) { c.add(field, pathProblem); return undefined }
  const dot = target.indexOf('.')
  const keyed = keyedTargetPattern.exec(target.slice(0, Math.max(0, dot)))
  const cell = keyed?.[1] ?? target.slice(0, dot)
  const handler = target.slice(dot + 1)
  if (dot < 0 || !handlerPattern.test(handler) || handler === 'constructor') { c.add(field, `target ${show(target)} is not \`cell.method\` or \`cell[:param].method\``); return undefined }
  if (!cellNames.has(cell)) { c.add(field, `target cell ${show(cell)} is not defined in cells`); return undefined }
  if (keyed == null) return { method: method as HttpMethod, path, cell, handler }
  if (!path.split('/').includes(`:${keyed[2]}`)) { c.add(field, `the key of ${show(target)} is path parameter :${keyed[2]}, which ${show(path)} does not have`); return undefined }
  return { method: method as HttpMethod, path, cell, handler, key: keyed[2] }
}

function checkStreamRoute (c: Checker, field: string, method: string, path: string, stream: string, streams: Record<string, StreamSpec>): Route | undefined {
  if (method !== 'POST' && method !== 'PUT') { c.add(field, `a stream route takes POST or PUT, not ${show(method)}`); return undefined }
  const pathProblem = routePathProblem(path)
  if (pathProblem !== undefined) { c.add(field, pathProblem); return undefined }
  if (streams[stream] === undefined) { c.add(field, `stream ${show(stream)} is not defined in streams`); return undefined }
  if (isDeadLetterStream(stream)) { c.add(field, `stream ${show(stream)} is a dead-letter stream: only Stem appends to it`); return undefined }
  return { method, path, cell: partitionCell(stream, 0), handler: STREAM_ROUTE_HANDLER, stream }
}

function routePathProblem (path: string): string | undefined {
  if (!path.startsWith('/')) return `path ${show(path)} must start with '/'`
  if (path.length > manifestLimits.maxPathLength) return `path is longer than ${manifestLimits.maxPathLength} characters`
  if (path === '/') return undefined
  const segments = path.slice(1).split('/')
  const params = new Set<string>()
  for (const s of segments) {
    if (paramSegment.test(s)) {
      if (params.has(s)) return `path ${show(path)} repeats the parameter ${s}`
      params.add(s)
    } else if (!literalSegment.test(s)) {
      return `path ${show(path)} has an invalid segment ${show(s)} (use letters, digits, . _ ~ - or :param)`
    }
  }
  return undefined
}

/** The shape a route matches, independent of parameter names: `GET /a/:` */
function routeShape (r: Route): string {
  return `${r.method} ${r.path.replace(/:[A-Za-z0-9_]+/g, ':')}`
}

/** Validates an already-parsed value (e.g. from YAML or JSON) as a manifest. */
export function validateManifest (value: unknown, file: string): AppManifest {
  const c = new Checker()
  if (value === null || value === undefined) throw new ManifestError(file, [{ field: '(root)', reason: 'the manifest is empty (expected a mapping with app, cells and routes)' }])
  if (!isPlainObject(value)) throw new ManifestError(file, [{ field: '(root)', reason: `the manifest is ${show(value)}, expected a mapping with app, cells and routes` }])
  c.unknownFields('', value, topFields)

  let app = ''
  if (typeof value.app !== 'string') c.add('app', value.app === undefined ? 'is required (the app\'s name)' : `${show(value.app)} is not a name`)
  else {
    app = value.app
    const problem = nameProblem(app)
    if (problem !== undefined) c.add('app', problem)
  }

  const streams = checkStreams((f, r) => { c.add(f, r) }, value.streams)
  const reserved = reservedCellNames(streams)
  const cells: Record<string, CellSpec> = {}
  if (!isPlainObject(value.cells)) c.add('cells', value.cells === undefined ? 'is required (a mapping of cell names to their settings)' : `${show(value.cells)} is not a mapping of cell names`)
  else {
    const names = Object.keys(value.cells)
    if (names.length === 0) c.add('cells', 'defines no cell')
    if (names.length > manifestLimits.maxCells) c.add('cells', `defines ${names.length} cells (at most ${manifestLimits.maxCells})`)
    const cellNames = new Set(names)
    for (const name of names.sort()) {
      const problem = nameProblem(name)
      if (problem !== undefined) { c.add(`cells.${name}`, problem); continue }
      if (reserved.has(name)) { c.add(`cells.${name}`, `the name is taken by a partition of stream ${reserved.get(name) ?? ''}`); continue }
      const spec = checkCell(c, name, value.cells[name], app, cellNames, streams)
      if (spec !== undefined) cells[name] = spec
    }
  }

  const routes: Route[] = []
  if (value.routes !== undefined && value.routes !== null) {
    if (!Array.isArray(value.routes)) c.add('routes', `${show(value.routes)} is not a list of routes`)
    else if (value.routes.length > manifestLimits.maxRoutes) c.add('routes', `has ${value.routes.length} routes (at most ${manifestLimits.maxRoutes})`)
    else {
      const cellNames = new Set(isPlainObject(value.cells) ? Object.keys(value.cells) : [])
      const shapes = new Map<string, number>()
      value.routes.forEach((line, i) => {
        const route = checkRoute(c, `routes[${i}]`, line, cellNames, streams)
        if (route === undefined) return
        const keyedCell = cells[route.cell]?.keyed === true
        if (keyedCell !== (route.key !== undefined)) {
          c.add(`routes[${i}]`, keyedCell ? `cell ${route.cell} is keyed: name the path parameter that holds the key, ${route.cell}[:id].${route.handler}` : `cell ${route.cell} is not keyed: route it as ${route.cell}.${route.handler}`)
          return
        }
        const shape = routeShape(route)
        const first = shapes.get(shape)
        if (first !== undefined) { c.add(`routes[${i}]`, `${route.method} ${route.path} matches the same requests as routes[${first}]`); return }
        shapes.set(shape, i)
        routes.push(route)
      })
    }
  }

  if (c.issues.length > 0) throw new ManifestError(file, c.issues)
  return { app, cells, routes, ...(Object.keys(streams).length > 0 ? { streams } : {}) }
}

/**
 * Parses manifest YAML. `file` names the source in error messages. Refuses oversized
 * text, YAML syntax errors, duplicate keys, several documents, and alias expansion beyond
 * `manifestLimits.maxAliases` (a "billion laughs" file fails fast instead of eating memory).
 */
export function parseManifest (text: string, file: string): AppManifest {
  if (Buffer.byteLength(text, 'utf8') > manifestLimits.maxFileBytes) {
    throw new ManifestError(file, [{ field: '(file)', reason: `is larger than ${formatSize(manifestLimits.maxFileBytes)}` }])
  }
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true, merge: false })
  const yamlIssues = [...doc.errors, ...doc.warnings].map(e => ({
    field: ((pos) => `${pos.line}:${pos.col}`)(lineCounter.linePos(e.pos[0])),
    reason: e.code === 'DUPLICATE_KEY' ? 'duplicate key' : e.code === 'MULTIPLE_DOCS' ? 'a manifest is a single YAML document' : e.message.split('\n')[0]
  }))
  visit(doc, {
    Pair (_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        const pos = lineCounter.linePos((pair.key as { range?: [number] }).range?.[0] ?? 0)
        yamlIssues.push({ field: `${pos.line}:${pos.col}`, reason: 'keys must be plain names, not lists or mappings' })
      }
    }
  })
  if (yamlIssues.length > 0) throw new ManifestError(file, yamlIssues)
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: manifestLimits.maxAliases })
  } catch (err) {
    throw new ManifestError(file, [{ field: '(yaml)', reason: (err as Error).message.split('\n')[0] }])
  }
  return validateManifest(value, file)
}

/** Reads and parses a manifest file; errors name the file by its base name. */
export async function loadManifest (path: string, signal?: AbortSignal): Promise<AppManifest> {
  const file = basename(path)
  let size: number
  try {
    size = (await stat(path)).size
  } catch (err) {
    throw new ManifestError(file, [{ field: '(file)', reason: `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }])
  }
  if (size > manifestLimits.maxFileBytes) throw new ManifestError(file, [{ field: '(file)', reason: `is larger than ${formatSize(manifestLimits.maxFileBytes)}` }])
  const text = await readFile(path, { encoding: 'utf8', signal })
  return parseManifest(text, file)
}

/** Absolute path of a cell's code module, given the manifest file's path. */
export function resolveCellCode (manifestPath: string, spec: Pick<CellSpec, 'code'>): string {
  return resolve(dirname(manifestPath), spec.code)
}
