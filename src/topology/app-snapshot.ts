// The snapshot of an app's state machine (app-state.ts) that its Raft group keeps instead
// of the log before it (log compaction), and that the leader sends a member too far behind
// (InstallSnapshot). Canonical and versioned: JSON with sorted keys inside an envelope
// `{ format, state, version }`, so every member encodes the same state to the same bytes,
// and a node refuses a snapshot of a newer version with a clear line instead of misreading it.
// Decoding is bounded (size, depth) and checks every field's type: a snapshot is input from
// disk or from another node, and a bad one must fail its group alone, never the node.
import { parseBoundedJson } from '../util/bounded-json.js'
import { nameProblem } from './manifest.js'
import type { AppState } from './app-state.js'
import { isReservationItem } from './app-state.js'

export const APP_SNAPSHOT_FORMAT = 'stem/app-state'
export const APP_SNAPSHOT_VERSION = 1
/** largest snapshot accepted: far above any real app (a manifest is at most 256 KiB) */
export const MAX_APP_SNAPSHOT_BYTES = 16 * 1024 * 1024

/** JSON with object keys sorted at every level: the same value always gives the same text. */
function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>
    const keys = Object.keys(obj).filter(k => obj[k] !== undefined).sort()
    return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** The snapshot bytes of an app's state (`undefined`: nothing published yet, or dissolved). */
export function encodeAppSnapshot (state: AppState | undefined): Uint8Array {
  return new TextEncoder().encode(canonicalJson({ format: APP_SNAPSHOT_FORMAT, version: APP_SNAPSHOT_VERSION, state: state ?? null }))
}

/**
 * Decodes a snapshot of app `app`'s state; throws a one-line error naming what is wrong
 * (too large, not JSON, another format, a newer version, a field of the wrong type, the
 * state of another app).
 */
export function decodeAppSnapshot (bytes: Uint8Array, app: string): AppState | undefined {
  if (bytes.byteLength > MAX_APP_SNAPSHOT_BYTES) throw new Error(`app snapshot of ${app} is too large: ${bytes.byteLength} bytes, limit ${MAX_APP_SNAPSHOT_BYTES}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new Error(`app snapshot of ${app} is not UTF-8 text`)
  }
  const envelope = parseBoundedJson(text, `app snapshot of ${app}`, { maxDepth: 64 })
  if (!isObject(envelope) || envelope.format !== APP_SNAPSHOT_FORMAT) throw new Error(`app snapshot of ${app}: not a ${APP_SNAPSHOT_FORMAT} snapshot`)
  if (typeof envelope.version !== 'number') throw new Error(`app snapshot of ${app}: no version`)
  if (envelope.version > APP_SNAPSHOT_VERSION) throw new Error(`app snapshot of ${app} has version ${envelope.version}, newer than this node reads (${APP_SNAPSHOT_VERSION}): upgrade stem`)
  if (envelope.version !== APP_SNAPSHOT_VERSION) throw new Error(`app snapshot of ${app} has unknown version ${envelope.version}`)
  if (envelope.state === null) return undefined
  const problem = stateProblem(envelope.state)
  if (problem !== undefined) throw new Error(`app snapshot of ${app}: ${problem}`)
  const state = envelope.state as AppState
  if (state.app !== app) throw new Error(`app snapshot of ${app} holds the state of app ${state.app}`)
  return state
}

type Obj = Record<string, unknown>

function isObject (v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0
const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every(isString)

/** Checks every value of a record; the first bad one's key, or undefined. */
function badEntry (v: unknown, ok: (x: unknown) => boolean): string | undefined {
  if (!isObject(v)) return '(not a mapping)'
  return Object.keys(v).find(k => !ok(v[k]))
}

function cellProblem (spec: unknown): string | undefined {
  if (!isObject(spec)) return 'is not a mapping'
  for (const f of ['replicas', 'clones', 'memory', 'timeout', 'mailbox']) if (!isCount(spec[f])) return `${f} is not a whole number`
  if (!isString(spec.code)) return 'code is not a string'
  if (spec.bundle !== undefined && !(isString(spec.bundle) && /^[0-9a-f]{64}$/.test(spec.bundle))) return 'bundle is not a sha256'
  if (spec.durability !== undefined && spec.durability !== 'disk' && spec.durability !== 'memory') return 'durability is neither disk nor memory'
  if (spec.links !== undefined && !isStrings(spec.links)) return 'links is not a list of strings'
  return undefined
}

function manifestProblem (m: unknown, app: string): string | undefined {
  if (!isObject(m)) return 'manifest is not a mapping'
  if (m.app !== app) return 'manifest is for another app'
  if (!isObject(m.cells)) return 'manifest.cells is not a mapping'
  for (const [name, spec] of Object.entries(m.cells)) {
    const problem = nameProblem(name) ?? cellProblem(spec)
    if (problem !== undefined) return `manifest.cells.${name} ${problem}`
  }
  if (!Array.isArray(m.routes) || !m.routes.every(r => isObject(r) && isString(r.method) && isString(r.path) && isString(r.cell) && isString(r.handler) && (r.key === undefined || isString(r.key)))) return 'manifest.routes is not a list of routes'
  return undefined
}

const isInstance = (v: unknown): boolean => isObject(v) && (v.primary === null || isString(v.primary)) && isStrings(v.clones)
const isHolder = (v: unknown): boolean => isObject(v) && isString(v.node) && isCount(v.epoch) && (v.role === 'primary' || v.role === 'clone') && (v.paired === undefined || typeof v.paired === 'boolean') && (v.dropped === undefined || typeof v.dropped === 'boolean') && (v.readded === undefined || typeof v.readded === 'boolean') && (v.alone === undefined || typeof v.alone === 'boolean')
const isRevision = (v: unknown): boolean => isObject(v) && typeof v.at === 'number'
const isRolledBack = (v: unknown): boolean => isObject(v) && isString(v.revision) && isString(v.error) && typeof v.at === 'number'

/** Why `v` is not an AppState (the field), or undefined. */
function stateProblem (v: unknown): string | undefined {
  if (!isObject(v)) return 'state is not a mapping'
  if (!isString(v.app) || nameProblem(v.app) !== undefined) return 'app is not an app name'
  for (const f of ['owner', 'ownerKey', 'publishedHash']) if (!isString(v[f])) return `${f} is not a string`
  if (typeof v.lastRequestAt !== 'number') return 'lastRequestAt is not a number'
  if (typeof v.dissolving !== 'boolean') return 'dissolving is not a boolean'
  if (!isStrings(v.reverted)) return 'reverted is not a list of cell names'
  const manifest = manifestProblem(v.manifest, v.app)
  if (manifest !== undefined) return manifest
  const records: Array<[string, (x: unknown) => boolean]> = [
    ['placement', x => Array.isArray(x) && x.every(isInstance)],
    ['epochs', isCount],
    ['previous', isRevision],
    ['rolledBack', isRolledBack]
  ]
  if (v.holders !== undefined) records.push(['holders', x => Array.isArray(x) && x.every(isHolder)])
  for (const [field, ok] of records) {
    const bad = badEntry(v[field], ok)
    if (bad !== undefined) return `${field}.${bad} is malformed`
  }
  if (!Array.isArray(v.reservations) || !v.reservations.every(isReservationItem)) return 'reservations is not a list of reservation items'
  return undefined
}
