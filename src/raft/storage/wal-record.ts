// Framing of write-ahead-log records: [u32 payload length][u32 crc32(type ‖ payload)]
// [u8 type][u32 crc32 of the 9 bytes before], little-endian. A scan stops at the first record
// that is short or fails a checksum and says where, so the caller can tell a torn tail (cut
// off by a crash mid-write: truncate it) from damage in the middle (valid records follow:
// refuse). `tailDamage` tells a torn write from a bit flip in a complete last record.
import { crc32 } from 'node:zlib'

export const RECORD_HEADER_BYTES = 13
/** bytes of the header covered by the header's own checksum */
const HEADER_CHECKED_BYTES = 9
/** the unit a disk writes atomically: a torn write leaves whole sectors unwritten (zeros) */
export const SECTOR_BYTES = 512
/** larger declared lengths are treated as damage, never allocated */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024

export enum RecordType {
  State = 1, // WalState, head of every segment
  Entry = 2, // Entry; an index at or below the last one truncates the log there first
  HardState = 3,
  Compaction = 4, // WalCompaction
  ConfState = 5,
  Snapshot = 6, // Snapshot: the one record of the snapshot file, never in a segment
  InstanceCopy = 7 // a cell instance's copy in its append log (topology/copy-log.ts), never in a raft segment
}

export interface WalRecord {
  type: RecordType
  payload: Uint8Array
  /** byte offset of the record's header in its segment */
  offset: number
}

/** crc32 of each possible type byte, the starting value of a record's checksum */
const TYPE_CRC = Array.from({ length: 256 }, (_, t) => crc32(Uint8Array.of(t)))

function checksum (type: number, payload: Uint8Array): number {
  return crc32(payload, TYPE_CRC[type])
}

export interface PendingRecord {
  type: RecordType
  payload: Uint8Array
}

/** Frames many records into one buffer (one allocation, one write). */
export function encodeRecords (records: PendingRecord[]): Uint8Array {
  let total = 0
  for (const r of records) total += RECORD_HEADER_BYTES + r.payload.length
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  let offset = 0
  for (const { type, payload } of records) {
    view.setUint32(offset, payload.length, true)
    view.setUint32(offset + 4, checksum(type, payload), true)
    out[offset + 8] = type
    view.setUint32(offset + HEADER_CHECKED_BYTES, crc32(out.subarray(offset, offset + HEADER_CHECKED_BYTES)), true)
    out.set(payload, offset + RECORD_HEADER_BYTES)
    offset += RECORD_HEADER_BYTES + payload.length
  }
  return out
}

export function encodeRecord (type: RecordType, payload: Uint8Array): Uint8Array {
  return encodeRecords([{ type, payload }])
}

export interface ScanResult {
  records: WalRecord[]
  /** offset just past the last good record */
  validBytes: number
  /** why scanning stopped before the end of the buffer, if it did */
  damage?: string
}

/** Parses one record at `offset`: the record, or why it is not a valid one. */
function readRecordAt (buf: Uint8Array, view: DataView, offset: number): WalRecord | string {
  if (buf.length - offset < RECORD_HEADER_BYTES) return `short header (${buf.length - offset} of ${RECORD_HEADER_BYTES} bytes)`
  if (crc32(buf.subarray(offset, offset + HEADER_CHECKED_BYTES)) !== view.getUint32(offset + HEADER_CHECKED_BYTES, true)) return 'header checksum mismatch'
  const length = view.getUint32(offset, true)
  if (length > MAX_RECORD_BYTES) return `record length ${length} over the ${MAX_RECORD_BYTES} byte limit`
  const end = offset + RECORD_HEADER_BYTES + length
  if (end > buf.length) return `short record (${buf.length - offset - RECORD_HEADER_BYTES} of ${length} payload bytes)`
  const type = buf[offset + 8]
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, end)
  if (checksum(type, payload) !== view.getUint32(offset + 4, true)) return 'payload checksum mismatch'
  return { type, payload, offset }
}

export function scanRecords (buf: Uint8Array): ScanResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const records: WalRecord[] = []
  let offset = 0
  while (offset < buf.length) {
    const record = readRecordAt(buf, view, offset)
    if (typeof record === 'string') return { records, validBytes: offset, damage: record }
    records.push(record)
    offset += RECORD_HEADER_BYTES + record.payload.length
  }
  return { records, validBytes: offset }
}

/**
 * Whether any valid record starts after `from`: if one does, the damage at `from` is in
 * the middle of the log, not a torn tail. Bounded work: a torn tail is at most one
 * write batch, and a random header passing its crc32 is a 2^-32 event per position.
 */
export function validRecordFollows (buf: Uint8Array, from: number, maxCheckedBytes = 256 * 1024 * 1024): boolean {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let budget = maxCheckedBytes
  for (let offset = from + 1; offset + RECORD_HEADER_BYTES <= buf.length && budget > 0; offset++) {
    const length = view.getUint32(offset, true)
    if (length > MAX_RECORD_BYTES || offset + RECORD_HEADER_BYTES + length > buf.length) continue
    budget -= length + 1
    if (typeof readRecordAt(buf, view, offset) !== 'string') return true
  }
  return false
}

/**
 * Whether damage at `from` with nothing valid after it is a torn write. A crash during a
 * write leaves the file short (the last record runs past its end) or some sectors of the
 * write unwritten, which read back as zeros (segments are only appended to). Damage in a
 * record that is all there and whose every sector holds data is a bit flip in data that
 * was already synced: false then. A flip in a record with an all-zero sector
 * of its own is taken for a torn write (payloads rarely hold 512 aligned zero bytes).
 */
export function isTornTail (buf: Uint8Array, from: number): boolean {
  if (buf.length - from < RECORD_HEADER_BYTES) return true
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const headerIntact = crc32(buf.subarray(from, from + HEADER_CHECKED_BYTES)) === view.getUint32(from + HEADER_CHECKED_BYTES, true)
  const end = headerIntact ? from + RECORD_HEADER_BYTES + view.getUint32(from, true) : buf.length
  if (end > buf.length) return true
  for (let sector = from - (from % SECTOR_BYTES); sector < end; sector += SECTOR_BYTES) {
    if (allZero(buf, Math.max(sector, from), Math.min(sector + SECTOR_BYTES, end))) return true
  }
  return false
}

function allZero (buf: Uint8Array, lo: number, hi: number): boolean {
  for (let i = lo; i < hi; i++) if (buf[i] !== 0) return false
  return true
}

/** the record header of WAL format 1 (before the header checksum): length, checksum, type */
const LEGACY_HEADER_BYTES = 9

/**
 * Reframes a file of format-1 records ([u32 length][u32 crc32(type ‖ payload)][u8 type]
 * [payload]) into today's framing. Scanning stops at the first record that is short or
 * fails its checksum (a torn tail, or damage): `droppedBytes` says how much was left out.
 */
export function reframeLegacyRecords (buf: Uint8Array): { bytes: Uint8Array, records: number, droppedBytes: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const records: PendingRecord[] = []
  let offset = 0
  while (buf.length - offset >= LEGACY_HEADER_BYTES) {
    const length = view.getUint32(offset, true)
    const end = offset + LEGACY_HEADER_BYTES + length
    if (length > MAX_RECORD_BYTES || end > buf.length) break
    const type = buf[offset + 8]
    const payload = buf.subarray(offset + LEGACY_HEADER_BYTES, end)
    if (checksum(type, payload) !== view.getUint32(offset + 4, true)) break
    records.push({ type, payload })
    offset = end
  }
  return { bytes: encodeRecords(records), records: records.length, droppedBytes: buf.length - offset }
}
