// The append log beside an instance copy's base file (<address>.json): each newer record of
// the copy is appended as one framed record (wal-record framing: length, crc32, header
// crc32), written with O_DSYNC: one synced write instead of an atomic replace's two fsyncs
// and a rename. Every record carries a sequence number; the base carries the sequence of
// the record it was compacted from, so the newest copy is the record of highest sequence
// wherever it is (a crash between a compaction's base write and its truncation of the log
// leaves only older records in the log).
//
// Reading tells a torn tail (a crash during an append that was never acknowledged: cut off)
// from damage (a record that fails its checksum with a valid one after it, or a complete
// last record with a flipped bit: the copy is not trusted).
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fsyncDir } from '../util/atomic-file.js'
import { RecordType, encodeRecord, isTornTail, scanRecords, validRecordFollows } from '../raft/storage/wal-record.js'

/** What a log holds: its complete records, or why it cannot be trusted. */
export interface CopyLogScan {
  /** JSON texts of the records, oldest first */
  records: string[]
  /** bytes of whole records (a torn tail after them is dropped) */
  validBytes: number
  /** bytes found past validBytes: a torn tail */
  tornBytes: number
  /** damage that is not a torn tail, one line */
  damage?: string
}

/** Scans a log file's bytes (see CopyLogScan). */
export function scanCopyLog (bytes: Uint8Array): CopyLogScan {
  const scan = scanRecords(bytes)
  if (scan.damage !== undefined && (validRecordFollows(bytes, scan.validBytes) || !isTornTail(bytes, scan.validBytes))) {
    return { records: [], validBytes: scan.validBytes, tornBytes: 0, damage: `log record at byte ${scan.validBytes}: ${scan.damage}` }
  }
  const other = scan.records.find(r => r.type !== RecordType.InstanceCopy)
  if (other !== undefined) return { records: [], validBytes: scan.validBytes, tornBytes: 0, damage: `log record at byte ${other.offset} is of another kind (${other.type})` }
  return { records: scan.records.map(r => Buffer.from(r.payload).toString('utf8')), validBytes: scan.validBytes, tornBytes: bytes.length - scan.validBytes }
}

/** a write returns once its data is on stable storage: one system call where write and fdatasync are two */
const SYNCED_WRITES = constants.O_RDWR | constants.O_DSYNC

/** One instance copy's open log: appends, each synced before it resolves. */
export class CopyLog {
  private constructor (private readonly handle: FileHandle, private bytes: number) {}

  /**
   * Opens the log at `path` holding `bytes` bytes of whole records (what a scan found;
   * anything after them, a torn tail, is cut off first). `empty`: truncate it to nothing
   * (a compaction wrote its records into the base). A log created here gets its directory
   * entry synced, or a power cut could take the file away with the records in it.
   */
  static async open (path: string, bytes: number, empty: boolean): Promise<CopyLog> {
    let handle: FileHandle
    let created = false
    try {
      handle = await open(path, SYNCED_WRITES)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      handle = await open(path, SYNCED_WRITES | constants.O_CREAT, 0o644)
      created = true
    }
    try {
      const size = empty ? 0 : bytes
      if (created || (await handle.stat()).size !== size) {
        await handle.truncate(size)
        await handle.sync()
      }
      if (created) await fsyncDir(dirname(path))
      return new CopyLog(handle, size)
    } catch (err) {
      await handle.close()
      throw err
    }
  }

  /** bytes of records the log holds */
  get size (): number {
    return this.bytes
  }

  /** Appends one record; resolves once it is on stable storage (O_DSYNC: each write is synced before it returns). */
  async append (text: string): Promise<void> {
    const record = encodeRecord(RecordType.InstanceCopy, Buffer.from(text, 'utf8'))
    for (let done = 0; done < record.length;) {
      const { bytesWritten } = await this.handle.write(record, done, record.length - done, this.bytes + done)
      done += bytesWritten
    }
    this.bytes += record.length
  }

  /** Empties the log (its records are in the base now). */
  async clear (): Promise<void> {
    await this.handle.truncate(0)
    await this.handle.sync()
    this.bytes = 0
  }

  async close (): Promise<void> {
    await this.handle.close()
  }
}
