// The code of a stream partition's cell (one per partition, generated and signed by the
// publisher): an append-only log of records in the cell's durable state, so a record is
// acknowledged (202 / `emit` resolving) only once the state holding it is durable like any
// reply (fsynced on the primary and a clone with `disk`), and it survives failover and
// restarts with the state. Per consumer group it keeps the last offset the group's
// consumer acknowledged (`acked`), a reset generation (`gen`, raised by `--reset`) and the
// consumer instance the pump delivers to (`holder`): when the pump moves the partition to
// another instance (its cell scaled), it first acknowledges what the holder applied.
// An append may name its place in another log (`from`: source, gen, offset), as the pump's
// appends to a dead-letter stream do: one at or before the last appended from that source
// is a repeat (a retry, or a failover between the append and the skip) and answers the
// first one's offset instead of appending again.
//
// Bounds: `retention` records, `retentionMs` of age, and maxBytes of record JSON (the
// state size limit). Records are dropped oldest first, and only once every group has
// acknowledged them: a partition full of unconsumed records refuses appends with a 429
// `backpressure` error (the gateway adds Retry-After), so producers slow down and memory
// stays bounded.

export interface PartitionConfig {
  stream: string
  partition: number
  partitions: number
  retention: number
  retentionMs?: number
  /** bytes of record JSON kept at most (below the state size limit) */
  maxBytes: number
  /** the consuming cells; those of mode `group` count for backpressure from the start, before they first read */
  consumers: Array<{ cell: string, mode: 'group' | 'broadcast' }>
}

/** what a partition's `info` method answers (`stem stream`, the stream lag in /metrics and on the dashboard) */
export interface PartitionInfo {
  stream: string
  partition: number
  /** offset of the oldest record kept, and of the next record */
  base: number
  next: number
  records: number
  bytes: number
  /** per consumer group: the last offset it acknowledged, its reset generation, the records after it, and the instance it is delivered to */
  groups: Record<string, { acked: number, gen: number, lag: number, holder?: string }>
}

/**
 * bytes of records a partition keeps at most, each counted as its JSON plus RECORD_OVERHEAD:
 * well below the state size limit (1 MiB), since the whole log is the state that each
 * append writes and sends to the clone
 */
export const PARTITION_MAX_BYTES = 256 * 1024
/** what a record's entry costs in the state besides its JSON: time, key, size, brackets */
export const RECORD_OVERHEAD = 40

/** records a read returns at most */
export const MAX_READ = 256

/** sources of appends with `from` a partition remembers (the oldest is forgotten past it) */
export const MAX_APPEND_SOURCES = 256

/** The ESM module of the partition cell. */
export function partitionSource (config: PartitionConfig): string {
  return `// Stem stream partition ${config.stream}/${config.partition} (generated)
const C = ${JSON.stringify(config)}
const MAX_READ = ${MAX_READ}
const MAX_SOURCES = ${MAX_APPEND_SOURCES}
const KEY_MAX = 256

export default class Partition {
  stemStream = C.stream
  partition = C.partition
  // offset of log[0], and of the next record
  base = 0
  next = 0
  bytes = 0
  // [time, key, record, size]
  log = []
  // group → [acked, gen, holder?]
  groups = {}
  // source → [gen, offset, offset here] of the last append with \`from\`
  sources = {}

  partitions () { return C.partitions }

  consumers () { return C.consumers }

  append (record, key, from) {
    if (key !== null && key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > KEY_MAX)) throw stem.error(400, 'key must be a string of 1-' + KEY_MAX + ' characters')
    if (from !== undefined && from !== null) {
      if (!Array.isArray(from) || from.length !== 3 || typeof from[0] !== 'string' || !/^[A-Za-z0-9.#\\/-]{1,200}$/.test(from[0]) || !Number.isSafeInteger(from[1]) || !Number.isSafeInteger(from[2])) throw stem.error(400, 'from must be [source, gen, offset]')
      const last = this.sources[from[0]]
      if (last !== undefined && (from[1] < last[0] || (from[1] === last[0] && from[2] <= last[1]))) return { partition: C.partition, offset: last[2], repeated: true }
    }
    const size = JSON.stringify(record === undefined ? null : record).length + ${RECORD_OVERHEAD} + (key?.length ?? 0)
    if (size > C.maxBytes / 4) throw stem.error(413, 'record is too large: ' + size + ' characters of JSON, limit ' + Math.floor(C.maxBytes / 4))
    const now = stem.now()
    this.known()
    this.trim(now, size)
    if (this.log.length >= C.retention || this.bytes + size > C.maxBytes) {
      throw stem.error(429, 'backpressure: partition ' + C.stream + '/' + C.partition + ' is full (' + this.log.length + ' records not yet consumed by group ' + this.slowest() + ')')
    }
    this.log.push([now, key ?? null, record === undefined ? null : record, size])
    this.bytes += size
    if (from !== undefined && from !== null) {
      const names = Object.keys(this.sources)
      if (this.sources[from[0]] === undefined && names.length >= MAX_SOURCES) delete this.sources[names[0]]
      this.sources[from[0]] = [from[1], from[2], this.next]
    }
    return { partition: C.partition, offset: this.next++ }
  }

  // an HTTP route: { query: { key }, body: record } → 202 { partition, offset }
  $post (request) {
    const key = request?.query?.key
    return stem.response(202, this.append(request?.body, typeof key === 'string' ? key : null))
  }

  // the records a group's consumer has not acknowledged, from its cursor on
  read (group, max) {
    const g = this.group(group)
    const from = Math.max(g[0] + 1, this.base)
    const n = Math.max(0, Math.min(typeof max === 'number' ? max : MAX_READ, MAX_READ, this.next - from))
    const records = []
    for (let i = 0; i < n; i++) {
      const e = this.log[from - this.base + i]
      records.push([from + i, e[1], e[0], e[2]])
    }
    return { gen: g[1], records, holder: g[2] ?? null }
  }

  // the pump delivers the group's records to this instance from now on
  hold (group, address) {
    if (typeof address !== 'string' || address.length === 0 || address.length > 300) throw stem.error(400, 'hold: expected an instance address')
    this.group(group)[2] = address
    return true
  }

  ack (group, offset, gen) {
    const g = this.groups[group]
    if (g === undefined || gen !== g[1] || typeof offset !== 'number' || offset <= g[0] || offset >= this.next) return false
    g[0] = offset
    this.trim(stem.now(), 0)
    return true
  }

  // --reset: earliest | latest | an offset (the next record the group gets)
  reset (group, where) {
    const g = this.group(group)
    let to
    if (where === 'earliest') to = this.base
    else if (where === 'latest') to = this.next
    else if (typeof where === 'number' && Number.isSafeInteger(where) && where >= 0) to = Math.min(Math.max(where, this.base), this.next)
    else throw stem.error(400, 'reset: expected earliest, latest or an offset, got ' + JSON.stringify(where))
    g[0] = to - 1
    g[1]++
    return this.info()
  }

  info () {
    const groups = {}
    for (const [name, g] of Object.entries(this.groups)) groups[name] = g[2] === undefined ? { acked: g[0], gen: g[1], lag: this.next - 1 - g[0] } : { acked: g[0], gen: g[1], lag: this.next - 1 - g[0], holder: g[2] }
    return { stream: C.stream, partition: C.partition, base: this.base, next: this.next, records: this.log.length, bytes: this.bytes, groups }
  }

  group (name) {
    if (typeof name !== 'string' || name.length === 0 || name.length > 80) throw stem.error(400, 'group must be a short string')
    this.groups[name] ??= [this.base - 1, 0]
    return this.groups[name]
  }

  known () {
    for (const c of C.consumers) if (c.mode === 'group') this.groups[c.cell] ??= [this.base - 1, 0]
  }

  slowest () {
    let name = '', acked = Infinity
    for (const [n, g] of Object.entries(this.groups)) if (g[0] < acked) { acked = g[0]; name = n }
    return name
  }

  // drops the oldest records every group acknowledged, while over a bound (room: bytes about to be added)
  trim (now, room) {
    let consumed = Infinity
    for (const g of Object.values(this.groups)) consumed = Math.min(consumed, g[0])
    let drop = 0
    while (drop < this.log.length && this.base + drop <= consumed) {
      const e = this.log[drop]
      const over = this.log.length - drop >= C.retention || this.bytes + room > C.maxBytes || (C.retentionMs !== undefined && e[0] < now - C.retentionMs)
      if (!over) break
      this.bytes -= e[3]
      drop++
    }
    if (drop > 0) { this.log.splice(0, drop); this.base += drop }
  }
}
`
}
