// The manifest's streams (SPEC §5): `streams.<name>: { partitions, retention }`, a cell's
// `consumes: [name | { stream, mode }]` and `autoscale: { min, max, lag }`, and a route
// `METHOD PATH -> stream NAME`; then the
// expansion the publisher makes before bundling: each partition becomes a placed cell of
// the app (`<stream>-p<i>`, cells/streams/partition.ts) running Stem's partition code, so
// it gets placement, a clone, failover, disk durability and restore like any instance.
// Every declared stream has a dead-letter stream `<stream>.dead` besides (1 partition, the
// same retention; dead-letter.ts), declared here, so it is read with `stem stream` and
// consumed like any stream; only Stem writes to it.
import { DEAD_LETTER_SUFFIX, deadLetterStream, partitionCell } from '../../cells/streams/partition.js'
import { parseDuration } from '../../util/units.js'
import type { AppManifest, CellSpec } from '../manifest.js'

export type ConsumeMode = 'group' | 'broadcast'

export interface StreamSpec {
  partitions: number
  /** records kept per partition */
  retention: number
  /** ms a record is kept, when retention was given as a duration */
  retentionMs?: number
}

export interface Consumption {
  stream: string
  mode: ConsumeMode
}

/**
 * A consumer's `autoscale: { min, max, lag }`: its app's leader keeps its replicas within
 * min..max, one more while its group's lag stays over `lag` records, one fewer while it
 * stays idle (autoscale.ts)
 */
export interface AutoscaleSpec {
  min: number
  max: number
  lag: number
}

export const streamLimits = {
  maxStreams: 16,
  maxPartitions: 32,
  /** partitions of all streams of an app (each is a cell with its own bundle) */
  maxTotalPartitions: 48,
  maxRetention: 1_000_000,
  /** a stream's name leaves room for its partitions' `-p<i>` within a cell name */
  maxNameLength: 55,
  /** records of lag an autoscaled consumer may be set to grow past */
  maxAutoscaleLag: 1_000_000_000
} as const

export const streamDefaults = { partitions: 4, retention: 1000 } as const
/** records kept when retention is a duration (the state size bounds them too) */
const DURATION_RETENTION_COUNT = 100_000

type Add = (field: string, reason: string) => void
const NAME = /^[a-z](?:[a-z0-9-]{0,53}[a-z0-9])?$/
const STREAM_FIELDS = new Set(['partitions', 'retention'])

function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object' && v !== null) return 'a mapping'
  return String(v)
}

function isMapping (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Parses `streams`; problems go to `add`. */
export function checkStreams (add: Add, v: unknown): Record<string, StreamSpec> {
  const streams: Record<string, StreamSpec> = {}
  if (v === undefined || v === null) return streams
  if (!isMapping(v)) { add('streams', `${show(v)} is not a mapping of stream names`); return streams }
  const names = Object.keys(v).sort()
  if (names.length > streamLimits.maxStreams) add('streams', `defines ${names.length} streams (at most ${streamLimits.maxStreams})`)
  let total = 0
  for (const name of names) {
    const field = `streams.${name}`
    if (!NAME.test(name)) { add(field, `${show(name)} is not a valid stream name (lowercase letters, digits and '-', starting with a letter, at most ${streamLimits.maxNameLength} characters)`); continue }
    const spec = checkStream(add, field, v[name])
    if (spec === undefined) continue
    total += spec.partitions
    streams[name] = spec
  }
  if (total > streamLimits.maxTotalPartitions) add('streams', `has ${total} partitions in all (at most ${streamLimits.maxTotalPartitions})`)
  // not counted in the limits above: one small partition per stream, named with a '.' no declared stream has
  for (const name of Object.keys(streams)) streams[deadLetterStream(name)] = { ...streams[name], partitions: 1 }
  return streams
}

function checkStream (add: Add, field: string, v: unknown): StreamSpec | undefined {
  const raw = v === null ? {} : v
  if (!isMapping(raw)) { add(field, `${show(v)} is not a mapping (expected partitions, retention)`); return undefined }
  for (const key of Object.keys(raw)) if (!STREAM_FIELDS.has(key)) add(`${field}.${key}`, 'unknown field (expected one of partitions, retention)')
  let partitions: number = streamDefaults.partitions
  const p = raw.partitions
  if (p !== undefined) {
    if (typeof p !== 'number' || !Number.isInteger(p)) add(`${field}.partitions`, `${show(p)} is not an integer`)
    else if (p < 1 || p > streamLimits.maxPartitions) add(`${field}.partitions`, `${p} is out of range (1..${streamLimits.maxPartitions})`)
    else partitions = p
  }
  const r = raw.retention
  if (r === undefined) return { partitions, retention: streamDefaults.retention }
  if (typeof r === 'number') {
    if (!Number.isInteger(r) || r < 1 || r > streamLimits.maxRetention) { add(`${field}.retention`, `${show(r)} is not a record count in 1..${streamLimits.maxRetention}`); return undefined }
    return { partitions, retention: r }
  }
  if (typeof r !== 'string') { add(`${field}.retention`, `${show(r)} is not a record count or a duration (e.g. 100000 or 1d)`); return undefined }
  try {
    // days too: retention is often a day or a week
    const days = /^(\d{1,4})d$/.exec(r)
    const ms = days != null ? Number(days[1]) * 86_400_000 : parseDuration(r)
    if (ms < 1000) throw new Error(`${show(r)} is shorter than 1s`)
    return { partitions, retention: DURATION_RETENTION_COUNT, retentionMs: ms }
  } catch (err) {
    add(`${field}.retention`, (err as Error).message)
    return undefined
  }
}

/** Parses a cell's `consumes`; streams must be declared in `streams`. */
export function checkConsumes (add: Add, field: string, v: unknown, streams: Record<string, StreamSpec>): Consumption[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v)) { add(field, `${show(v)} is not a list of streams`); return undefined }
  const out: Consumption[] = []
  v.forEach((entry: unknown, i) => {
    const f = `${field}[${i}]`
    let stream: unknown = entry
    let mode: unknown = 'group'
    if (isMapping(entry)) {
      for (const key of Object.keys(entry)) if (key !== 'stream' && key !== 'mode') add(`${f}.${key}`, 'unknown field (expected stream, mode)')
      stream = entry.stream
      mode = entry.mode ?? 'group'
    }
    if (typeof stream !== 'string') { add(f, `${show(stream)} is not a stream name`); return }
    if (streams[stream] === undefined) { add(f, `stream ${show(stream)} is not defined in streams`); return }
    if (mode !== 'group' && mode !== 'broadcast') { add(`${f}.mode`, `${show(mode)} is not a mode (expected group or broadcast)`); return }
    if (out.some(c => c.stream === stream)) { add(f, `consumes stream ${show(stream)} twice`); return }
    out.push({ stream, mode })
  })
  return out
}

const AUTOSCALE_FIELDS = new Set(['min', 'max', 'lag'])

/**
 * Parses a cell's `autoscale` (`consumes`: the cell's parsed consumption; `replicas`: its
 * replicas as written, undefined when left out) and answers it with the replicas the cell
 * starts with: as written, or `min`.
 */
export function checkAutoscale (add: Add, field: string, v: unknown, consumes: readonly Consumption[] | undefined, replicas: number | undefined, maxReplicas: number): { autoscale: AutoscaleSpec, replicas: number } | undefined {
  if (v === undefined) return undefined
  if (!isMapping(v)) { add(field, `${show(v)} is not a mapping (expected { min, max, lag })`); return undefined }
  let ok = true
  for (const key of Object.keys(v)) if (!AUTOSCALE_FIELDS.has(key)) { add(`${field}.${key}`, 'unknown field (expected one of min, max, lag)'); ok = false }
  const whole = (name: string, value: unknown, min: number, max: number, fallback?: number): number => {
    if (value === undefined && fallback !== undefined) return fallback
    if (value === undefined) { add(`${field}.${name}`, 'is required'); ok = false; return 0 }
    if (typeof value !== 'number' || !Number.isInteger(value)) { add(`${field}.${name}`, `${show(value)} is not a whole number`); ok = false; return 0 }
    if (value < min || value > max) { add(`${field}.${name}`, `${value} is out of range (${min}..${max})`); ok = false; return 0 }
    return value
  }
  const spec: AutoscaleSpec = {
    min: whole('min', v.min, 1, maxReplicas, 1),
    max: whole('max', v.max, 1, maxReplicas),
    lag: whole('lag', v.lag, 1, streamLimits.maxAutoscaleLag)
  }
  if (ok && spec.min > spec.max) { add(field, `min ${spec.min} is more than max ${spec.max}`); ok = false }
  if ((consumes ?? []).length === 0) { add(field, 'only a cell that consumes a stream (consumes: [...]) autoscales by its lag'); ok = false } else if (!(consumes ?? []).some(c => c.mode === 'group')) { add(field, 'a broadcast consumer\'s every instance gets every record: more replicas do not lower its lag (consume as a group)'); ok = false }
  if (ok && replicas !== undefined && (replicas < spec.min || replicas > spec.max)) { add(field.replace(/autoscale$/, 'replicas'), `${replicas} is outside autoscale's ${spec.min}..${spec.max}`); ok = false }
  return ok ? { autoscale: spec, replicas: replicas ?? spec.min } : undefined
}

/** Cell names the partitions of `streams` take: a manifest cell of such a name is refused. */
export function reservedCellNames (streams: Record<string, StreamSpec>): Map<string, string> {
  const names = new Map<string, string>()
  for (const [stream, spec] of Object.entries(streams)) {
    for (let i = 0; i < spec.partitions; i++) names.set(partitionCell(stream, i), stream)
  }
  return names
}

/** the settings of the cells that hold partitions */
export const partitionCellDefaults = { memory: 128 * 2 ** 20, timeout: 1000, mailbox: 10_000, clones: 1 } as const
/**
 * a dead-letter partition's memory limit: a cell's default. Its log is bounded like any
 * partition's (256 KiB of records), and it takes one record at a time, so it needs no more;
 * placement counts the limit twice (headroom) on two nodes, for every stream.
 */
export const deadLetterPartitionMemory = 32 * 2 ** 20

export interface GeneratedPartition {
  cell: string
  stream: string
  partition: number
  spec: StreamSpec
  /** the consumers, by cell name */
  consumers: Array<{ cell: string, mode: ConsumeMode }>
}

/**
 * Adds a cell per partition to the manifest (in place) and returns them, so the publisher
 * bundles Stem's partition code for each. Stream routes already target partition 0's cell
 * (see STREAM_ROUTE_HANDLER); the gateway spreads them over the partitions.
 */
export function expandStreams (manifest: AppManifest): GeneratedPartition[] {
  const out: GeneratedPartition[] = []
  for (const [stream, spec] of Object.entries(manifest.streams ?? {})) {
    const consumers = Object.entries(manifest.cells)
      .flatMap(([cell, c]) => (c.consumes ?? []).filter(x => x.stream === stream).map(x => ({ cell, mode: x.mode })))
    for (let i = 0; i < spec.partitions; i++) {
      const cell = partitionCell(stream, i)
      const memory = stream.endsWith(DEAD_LETTER_SUFFIX) ? deadLetterPartitionMemory : partitionCellDefaults.memory
      const cellSpec: CellSpec = { code: `stem:stream/${stream}/${i}`, replicas: 1, clones: partitionCellDefaults.clones, durability: 'disk', memory, timeout: partitionCellDefaults.timeout, mailbox: partitionCellDefaults.mailbox }
      manifest.cells[cell] = cellSpec
      out.push({ cell, stream, partition: i, spec, consumers })
    }
  }
  return out
}

/** the partition cell's method a stream route calls (`$`: no manifest route can name it) */
export const STREAM_ROUTE_HANDLER = '$post'
