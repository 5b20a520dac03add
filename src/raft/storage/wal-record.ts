// Framing of write-ahead-log records: [u32 payload length][u32 crc32(type ‖ payload)]
// [u8 type][payload], little-endian. A scan stops at the first record that is short or
// fails its checksum and says where, so the caller can tell a torn tail (cut off by a
// crash mid-write: truncate it) from damage in the middle (valid records follow: refuse).
import { crc32 } from 'node:zlib'

export const RECORD_HEADER_BYTES = 9
/** larger declared lengths are treated as damage, never allocated */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024

export enum RecordType {
  State = 1, // WalState, head of every segment
  Entry = 2, // Entry; an index at or below the last one truncates the log there first
  HardState = 3,
  Compaction = 4, // WalCompaction
  ConfState = 5,
  Snapshot = 6 // Snapshot: the one record of the snapshot file, never in a segment
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
  const length = view.getUint32(offset, true)
  if (length > MAX_RECORD_BYTES) return `record length ${length} over the ${MAX_RECORD_BYTES} byte limit`
  const end = offset + RECORD_HEADER_BYTES + length
  if (end > buf.length) return `short record (${buf.length - offset - RECORD_HEADER_BYTES} of ${length} payload bytes)`
  const type = buf[offset + 8]
  const payload = buf.subarray(offset + RECORD_HEADER_BYTES, end)
  if (checksum(type, payload) !== view.getUint32(offset + 4, true)) return 'checksum mismatch'
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
