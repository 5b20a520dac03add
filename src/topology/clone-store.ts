// The copies of instances a node holds, on its disk: the clones it holds for other nodes'
// instances (<dataDir>/clones/) and the states of its own primaries (<dataDir>/cells/), so
// that a restarted node still holds them. Each copy is a base file (<address>.json, written
// atomically) and an append log beside it (<address>.log, copy-log.ts): a newer record is
// one synced append, and a long log is compacted into a new base.
//
// Writes are coalesced: at most one write per copy in flight, always of the newest record,
// so the states of concurrent messages share one fsync (group commit). `save` settles once
// the record (or a newer one) is on disk. With `minWriteIntervalMs` > 0 (write-behind, for
// `durability: memory`) each write starts only after that pause, behind the reply that
// produced the state, so a busy instance costs a few fsyncs per second and no reply
// shares its turn with the write; `save(…, { now: true })` skips the pause (`durability:
// disk`: the reply waits for the fsync).
import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { mkdirDurable, writeFileAtomic } from '../util/atomic-file.js'
import type { CellLimits } from '../cells/limits.js'
import { decodeReplyWindow } from '../cells/reply-window.js'
import { CopyLog, scanCopyLog } from './copy-log.js'

export interface StoredClone {
  /** app/cell#i */
  address: string
  /** sha256 of the instance's bundle, hex */
  bundle: string
  /** protobuf-encoded public key of the app owner */
  owner: Uint8Array
  limits?: CellLimits
  /** JSON text of the held state; none before the primary sent one */
  state?: string
  /** version of `state`; -1 before the primary sent one */
  version: number
  /** placement epoch the state was produced in (a newer epoch wins over a higher version) */
  epoch?: number
  /** the reply window of `state` (src/cells/reply-window.ts), written in the same file: retries stay exactly-once after a restart */
  replies?: string
}

export interface CloneStoreInit {
  /** largest state accepted from a file, characters (default 8 MiB) */
  maxStateBytes?: number
  /** ms between two writes of one clone (default 100) */
  minWriteIntervalMs?: number
}

/** what loadAll found: the clones, and one line per file it could not use (named) */
export interface LoadedClones {
  clones: StoredClone[]
  dropped: string[]
  /** instances whose file was damaged (moved aside): a copy existed and is gone */
  damaged: string[]
  /** states written by an earlier Stem's cell runtime (no owner, no limits): the caller completes them from the bundle */
  legacy: LegacyState[]
}

/** <dataDir>/cells/<address>.json as the cell runtime wrote it before this format */
export interface LegacyState {
  address: string
  bundle: string
  state: string
  version: number
  file: string
}

/** a file written by a newer stem: left in place, never rewritten or deleted */
export class NewerFormatError extends Error {}

const INSTANCE = /^[a-z0-9][a-z0-9-]{0,62}\/[A-Za-z0-9_-]+#\d+$/i
/**
 * 3: records carry a sequence number (`seq`) and newer ones go to an append log beside the
 * base file (an older stem would read the base alone: stale); 2: files carry the state's
 * reply window (`replies`); format 1 files load with an empty one
 */
const FILE_FORMAT = 3
const MAX_OWNER_BYTES = 256

/** what one instance's files hold, as this store last wrote or read them */
interface CopyFiles {
  /** sequence number of the newest record on disk, base or log */
  seq: number
  /** the base file holds a record of this format (a log append needs one beside it) */
  based: boolean
  /** bytes of whole records in the log */
  logBytes: number
  log?: CopyLog
}

/** a log is compacted into its base once it would pass this many bytes, or LOG_RECORDS records of the current size */
const MIN_LOG_BYTES = 256 * 1024
const LOG_RECORDS = 4
/** logs kept open at once (the least recently written is closed past it; it reopens on its next write) */
const MAX_OPEN_LOGS = 128

export class CloneStore {
  private readonly queued = new Map<string, StoredClone>()
  private readonly writing = new Map<string, Promise<void>>()
  /** saves per clone, so a remove can tell whether the clone was saved again meanwhile */
  private readonly saves = new Map<string, number>()
  /** records whose next write must not wait for the write-behind pause */
  private readonly urgent = new Set<string>()
  /** per instance: its files' sequence and log; in the order of their last write (open logs are closed oldest first) */
  private readonly files = new Map<string, CopyFiles>()
  private openLogs = 0
  private readonly maxStateBytes: number
  private readonly minWriteIntervalMs: number
  private ready: Promise<unknown> | undefined

  constructor (readonly dir: string, init: CloneStoreInit = {}) {
    this.maxStateBytes = init.maxStateBytes ?? 8 * 1024 * 1024
    this.minWriteIntervalMs = init.minWriteIntervalMs ?? 100
  }

  /** the base file of an instance's record */
  fileOf (address: string): string {
    return join(this.dir, `${encodeURIComponent(address)}.json`)
  }

  /** the append log beside the base file */
  logOf (address: string): string {
    return join(this.dir, `${encodeURIComponent(address)}.log`)
  }

  /** Queues the record for writing; settles once it (or a newer record of it) is on disk. */
  async save (clone: StoredClone, options: { now?: boolean } = {}): Promise<void> {
    if (options.now === true) this.urgent.add(clone.address)
    this.queued.set(clone.address, clone)
    this.saves.set(clone.address, (this.saves.get(clone.address) ?? 0) + 1)
    const inFlight = this.writing.get(clone.address)
    if (inFlight !== undefined) return await inFlight
    const run = (async () => {
      this.ready ??= mkdirDurable(this.dir)
      await this.ready
      for (;;) {
        // nothing new since the last write: done
        if (!this.queued.has(clone.address)) break
        // states arriving during the pause are folded into one write
        if (this.minWriteIntervalMs > 0 && !this.urgent.has(clone.address)) await new Promise(resolve => setTimeout(resolve, this.minWriteIntervalMs))
        this.urgent.delete(clone.address)
        const next = this.queued.get(clone.address)
        if (next === undefined) break
        this.queued.delete(clone.address)
        await this.write(next)
      }
    })().finally(() => { this.writing.delete(clone.address) })
    this.writing.set(clone.address, run)
    return await run
  }

  /** One record on disk: appended to the instance's log and synced, or, into a fresh base when there is none yet or the log is long (the log then emptied). */
  private async write (clone: StoredClone): Promise<void> {
    const files = this.files.get(clone.address) ?? { seq: 0, based: false, logBytes: 0 }
    this.files.delete(clone.address)
    this.files.set(clone.address, files)
    const seq = files.seq + 1
    const text = encodeStoredClone(clone, seq)
    if (files.based && files.logBytes + text.length <= Math.max(MIN_LOG_BYTES, LOG_RECORDS * text.length)) {
      const log = files.log ?? await this.openLog(clone.address, files, false)
      await log.append(text)
      files.logBytes = log.size
      files.seq = seq
      return
    }
    await writeFileAtomic(this.fileOf(clone.address), text)
    files.seq = seq
    // until the log is empty its records (older than the base now) must not take appends
    files.based = false
    if (files.log !== undefined) await files.log.clear()
    else await this.openLog(clone.address, files, true)
    files.logBytes = 0
    files.based = true
  }

  private async openLog (address: string, files: CopyFiles, empty: boolean): Promise<CopyLog> {
    const log = await CopyLog.open(this.logOf(address), files.logBytes, empty)
    files.log = log
    if (++this.openLogs > MAX_OPEN_LOGS) {
      for (const [other, f] of this.files) {
        if (f.log === undefined || other === address || this.writing.has(other)) continue
        const closing = f.log
        f.log = undefined
        this.openLogs--
        await closing.close()
        break
      }
    }
    return log
  }

  /** Forgets the clone: a queued write is dropped, a running one finishes, then its files go. */
  async remove (address: string): Promise<void> {
    this.queued.delete(address)
    const saves = this.saves.get(address)
    await this.writing.get(address)?.catch(() => {})
    if (this.saves.get(address) !== saves) return // saved again meanwhile: the new record stays
    this.saves.delete(address)
    const files = this.files.get(address)
    this.files.delete(address)
    if (files?.log !== undefined) {
      this.openLogs--
      await files.log.close()
    }
    // the base first: a crash between the two leaves the newest record (in the log), never an older one alone
    for (const file of [this.fileOf(address), this.logOf(address)]) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
  }

  /** Every stored clone. Files that cannot be read as one are moved aside and reported in `dropped`; a torn tail of a log (an append a crash cut short, never acknowledged) is left out. */
  async loadAll (): Promise<LoadedClones> {
    const out: LoadedClones = { clones: [], dropped: [], damaged: [], legacy: [] }
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out
      throw err
    }
    const bases = new Set<string>()
    const logs = new Set<string>()
    for (const name of names.sort()) {
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        // a write cut short by a crash: the file it was replacing is intact
        await unlink(join(this.dir, name)).catch(() => {})
        continue
      }
      if (name.endsWith('.json')) bases.add(name.slice(0, -'.json'.length))
      else if (name.endsWith('.log')) logs.add(name.slice(0, -'.log'.length))
    }
    for (const stem of [...new Set([...bases, ...logs])].sort()) {
      const base = join(this.dir, `${stem}.json`)
      const log = join(this.dir, `${stem}.log`)
      const read = await this.readFiles(bases.has(stem) ? base : undefined, logs.has(stem) ? log : undefined)
      if (read.kind === 'legacy') { out.legacy.push(read.legacy); continue }
      if (read.kind === 'newer') { out.dropped.push(`${read.file} was written by a newer version of stem (${read.reason}): left in place, not used`); continue }
      if (read.kind === 'damaged') {
        // kept beside, for a person to look at: nothing is deleted that might be needed
        const moved: string[] = []
        for (const file of [base, log]) {
          if (!(file === base ? bases : logs).has(stem)) continue
          await rename(file, `${file}.corrupt`).catch(() => {})
          moved.push(`${basename(file)}.corrupt`)
        }
        out.dropped.push(`${read.file} is damaged (${read.reason}): moved to ${moved.join(' and ')}, not used`)
        const address = addressOfFile(stem)
        if (address !== undefined) out.damaged.push(address)
        continue
      }
      if (read.clone === undefined) continue
      out.clones.push(read.clone)
      // a store already writing this instance knows its files better than the disk does now
      if (!this.files.has(read.clone.address)) this.files.set(read.clone.address, { seq: read.seq, based: read.based, logBytes: read.logBytes })
    }
    return out
  }

  /** The newest record of `address` on disk, without changing anything there (a torn log tail is ignored); throws a one-line reason when its files are damaged. */
  async read (address: string): Promise<StoredClone | undefined> {
    const exists = async (file: string): Promise<string | undefined> => await stat(file).then(() => file, () => undefined)
    const read = await this.readFiles(await exists(this.fileOf(address)), await exists(this.logOf(address)))
    if (read.kind === 'copy') return read.clone
    if (read.kind === 'legacy') return undefined
    throw new Error(`${read.file}: ${read.reason}`)
  }

  /** What an instance's base and log hold together: the record of highest sequence. */
  private async readFiles (base: string | undefined, log: string | undefined): Promise<FilesRead> {
    let newest: { clone: StoredClone, seq: number } | undefined
    let based = false
    let logBytes = 0
    if (base !== undefined) {
      const text = await readFile(base, 'utf8')
      const legacy = legacyState(text, base)
      if (legacy !== undefined && this.fileOf(legacy.address) === base) return { kind: 'legacy', legacy }
      try {
        newest = this.decodeFor(base, text)
        based = true
      } catch (err) {
        return err instanceof NewerFormatError ? { kind: 'newer', file: base, reason: err.message } : { kind: 'damaged', file: base, reason: (err as Error).message }
      }
    }
    if (log !== undefined) {
      const scan = scanCopyLog(await readFile(log))
      if (scan.damage !== undefined) return { kind: 'damaged', file: log, reason: scan.damage }
      logBytes = scan.validBytes
      // the highest sequence, not the last place: a record written again (replayed) is not newer
      for (const text of scan.records) {
        try {
          const logged = this.decodeFor(log, text)
          if (newest === undefined || logged.seq > newest.seq) newest = logged
        } catch (err) {
          return err instanceof NewerFormatError ? { kind: 'newer', file: log, reason: err.message } : { kind: 'damaged', file: log, reason: (err as Error).message }
        }
      }
    }
    return { kind: 'copy', clone: newest?.clone, seq: newest?.seq ?? 0, based, logBytes }
  }

  /** a record read from `file`, which must be one of its own instance */
  private decodeFor (file: string, text: string): { clone: StoredClone, seq: number } {
    const copy = decodeStoredCopy(text, this.maxStateBytes)
    const own = file.endsWith('.log') ? this.logOf(copy.clone.address) : this.fileOf(copy.clone.address)
    if (own !== file) throw new Error(`it holds ${copy.clone.address}, another instance than its name says`)
    return copy
  }

  /** Waits for every queued write. */
  async flush (): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing.values()])
  }

  /** Waits for every queued write, then closes the open logs (a later save opens its log again). */
  async close (): Promise<void> {
    await this.flush()
    for (const files of this.files.values()) {
      const log = files.log
      if (log === undefined) continue
      files.log = undefined
      this.openLogs--
      await log.close()
    }
  }
}

type FilesRead =
  | { kind: 'copy', clone?: StoredClone, seq: number, based: boolean, logBytes: number }
  | { kind: 'legacy', legacy: LegacyState }
  | { kind: 'newer', file: string, reason: string }
  | { kind: 'damaged', file: string, reason: string }

/** The record if `text` is a state file of an earlier Stem ({address, hash, version, state}, no format). */
function legacyState (text: string, file: string): LegacyState | undefined {
  let raw: Record<string, unknown>
  try { raw = JSON.parse(text) as Record<string, unknown> } catch { return undefined }
  if (raw === null || typeof raw !== 'object' || 'format' in raw) return undefined
  const { address, hash, version, state } = raw
  if (typeof address !== 'string' || !INSTANCE.test(address) || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash) || typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0 || typeof state !== 'string') return undefined
  try { JSON.parse(state) } catch { return undefined }
  return { address, bundle: hash, state, version, file }
}

/** the instance a file name without its extension stands for, if it is one */
function addressOfFile (stem: string): string | undefined {
  try {
    const address = decodeURIComponent(stem)
    return INSTANCE.test(address) ? address : undefined
  } catch {
    return undefined
  }
}

/** The record's JSON text; `seq` orders the records of one instance's base and log (copy-log.ts). */
export function encodeStoredClone (c: StoredClone, seq?: number): string {
  return JSON.stringify({
    format: FILE_FORMAT,
    seq,
    address: c.address,
    bundle: c.bundle,
    owner: Buffer.from(c.owner).toString('base64'),
    limits: c.limits,
    state: c.state,
    version: c.version,
    epoch: c.epoch,
    replies: c.replies
  })
}

/** Parses and checks one clone record; throws a one-line reason. */
export function decodeStoredClone (text: string, maxStateBytes = 8 * 1024 * 1024): StoredClone {
  return decodeStoredCopy(text, maxStateBytes).clone
}

/** A clone record and its sequence number (0 in files of format 1 and 2, which had none). */
export function decodeStoredCopy (text: string, maxStateBytes = 8 * 1024 * 1024): { clone: StoredClone, seq: number } {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new Error('not JSON (truncated?)')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object')
  if (typeof raw.format === 'number' && raw.format > FILE_FORMAT) throw new NewerFormatError(`format ${raw.format}, this one reads ${FILE_FORMAT}`)
  if (raw.format !== 1 && raw.format !== 2 && raw.format !== FILE_FORMAT) throw new Error(`unknown format ${String(raw.format)} (expected 1 to ${FILE_FORMAT})`)
  const { address, bundle, owner, limits, state, version, epoch, replies, seq } = raw
  if (seq !== undefined && (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)) throw new Error('seq is not an integer ≥ 1')
  if (typeof address !== 'string' || !INSTANCE.test(address)) throw new Error('address is not app/cell#i')
  if (typeof bundle !== 'string' || !/^[0-9a-f]{64}$/.test(bundle)) throw new Error('bundle is not a sha256 hex id')
  if (typeof owner !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(owner)) throw new Error('owner is not base64')
  const ownerBytes = new Uint8Array(Buffer.from(owner, 'base64'))
  if (ownerBytes.byteLength === 0 || ownerBytes.byteLength > MAX_OWNER_BYTES) throw new Error('owner key has an impossible size')
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < -1) throw new Error('version is not an integer ≥ -1')
  if (state !== undefined && (typeof state !== 'string' || state.length > maxStateBytes)) throw new Error(`state is not a string of at most ${maxStateBytes} characters`)
  if (state !== undefined) {
    try { JSON.parse(state) } catch { throw new Error('state is not JSON text') }
  }
  if ((state === undefined) !== (version === -1)) throw new Error('state and version disagree')
  if (epoch !== undefined && (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0)) throw new Error('epoch is not an integer ≥ 0')
  if (replies !== undefined) {
    if (typeof replies !== 'string' || state === undefined) throw new Error('replies is not text beside a state')
    decodeReplyWindow(replies)
  }
  const out: StoredClone = { address, bundle, owner: ownerBytes, limits: limits === undefined ? undefined : checkLimits(limits), state, version }
  if (epoch !== undefined) out.epoch = epoch
  if (replies !== undefined) out.replies = replies
  return { clone: out, seq: seq ?? 0 }
}

function checkLimits (raw: unknown): CellLimits {
  const l = raw as Partial<Record<keyof CellLimits, unknown>>
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0
  if (raw === null || typeof raw !== 'object' || !positive(l.memory) || !positive(l.timeout) || !positive(l.mailbox)) throw new Error('limits are not positive whole numbers')
  return { memory: l.memory, timeout: l.timeout, mailbox: l.mailbox }
}
