// The copies of instances a node holds, on its disk (atomic write + fsync): the clones it
// holds for other nodes' instances (<dataDir>/clones/<address>.json) and the states of its
// own primaries (<dataDir>/cells/<address>.json), so that a restarted node still holds them.
//
// Writes are coalesced: at most one write per file in flight, always of the newest record,
// so the states of concurrent messages share one fsync (group commit). `save` settles once
// the record (or a newer one) is on disk. With `minWriteIntervalMs` > 0 (write-behind, for
// `durability: memory`) each write starts only after that pause, behind the reply that
// produced the state, so a busy instance costs a few fsyncs per second and no reply
// shares its turn with the write; `save(…, { now: true })` skips the pause (`durability:
// disk`: the reply waits for the fsync).
import { readdir, readFile, rename, unlink } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { mkdirDurable, writeFileAtomic } from '../util/atomic-file.js'
import type { CellLimits } from '../cells/limits.js'
import { decodeReplyWindow } from '../cells/reply-window.js'

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
/** 2: files carry the state's reply window (`replies`); format 1 files load with an empty one */
const FILE_FORMAT = 2
const MAX_OWNER_BYTES = 256

export class CloneStore {
  private readonly queued = new Map<string, StoredClone>()
  private readonly writing = new Map<string, Promise<void>>()
  /** saves per clone, so a remove can tell whether the clone was saved again meanwhile */
  private readonly saves = new Map<string, number>()
  /** records whose next write must not wait for the write-behind pause */
  private readonly urgent = new Set<string>()
  private readonly maxStateBytes: number
  private readonly minWriteIntervalMs: number
  private ready: Promise<unknown> | undefined

  constructor (readonly dir: string, init: CloneStoreInit = {}) {
    this.maxStateBytes = init.maxStateBytes ?? 8 * 1024 * 1024
    this.minWriteIntervalMs = init.minWriteIntervalMs ?? 100
  }

  /** the file of an instance's record */
  fileOf (address: string): string {
    return join(this.dir, `${encodeURIComponent(address)}.json`)
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
        await writeFileAtomic(this.fileOf(clone.address), encodeStoredClone(next))
      }
    })().finally(() => { this.writing.delete(clone.address) })
    this.writing.set(clone.address, run)
    return await run
  }

  /** Forgets the clone: a queued write is dropped, a running one finishes, then the file goes. */
  async remove (address: string): Promise<void> {
    this.queued.delete(address)
    const saves = this.saves.get(address)
    await this.writing.get(address)?.catch(() => {})
    if (this.saves.get(address) !== saves) return // saved again meanwhile: the new record stays
    this.saves.delete(address)
    await unlink(this.fileOf(address)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }

  /** Every stored clone. A file that cannot be read as one is deleted and reported in `dropped`. */
  async loadAll (): Promise<LoadedClones> {
    const out: LoadedClones = { clones: [], dropped: [], damaged: [], legacy: [] }
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out
      throw err
    }
    for (const name of names.sort()) {
      const path = join(this.dir, name)
      if (name.startsWith('.') && name.endsWith('.tmp')) {
        // a write cut short by a crash: the file it was replacing is intact
        await unlink(path).catch(() => {})
        continue
      }
      if (!name.endsWith('.json')) continue
      try {
        const text = await readFile(path, 'utf8')
        const legacy = legacyState(text, path)
        if (legacy !== undefined && this.fileOf(legacy.address) === path) { out.legacy.push(legacy); continue }
        const clone = decodeStoredClone(text, this.maxStateBytes)
        if (this.fileOf(clone.address) !== path) throw new Error(`it holds ${clone.address}, another instance than its name says`)
        out.clones.push(clone)
      } catch (err) {
        if (err instanceof NewerFormatError) {
          out.dropped.push(`${path} was written by a newer version of stem (${err.message}): left in place, not used`)
          continue
        }
        // kept beside, for a person to look at: nothing is deleted that might be needed
        await rename(path, `${path}.corrupt`).catch(() => {})
        out.dropped.push(`${path} is damaged (${(err as Error).message}): moved to ${basename(path)}.corrupt, not used`)
        const address = addressOfFile(name)
        if (address !== undefined) out.damaged.push(address)
      }
    }
    return out
  }

  /** Waits for every queued write. */
  async flush (): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing.values()])
  }
}

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

/** the instance a file name stands for, if it is one */
function addressOfFile (name: string): string | undefined {
  try {
    const address = decodeURIComponent(name.slice(0, -'.json'.length))
    return INSTANCE.test(address) ? address : undefined
  } catch {
    return undefined
  }
}

export function encodeStoredClone (c: StoredClone): string {
  return JSON.stringify({
    format: FILE_FORMAT,
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

/** Parses and checks one clone file; throws a one-line reason. */
export function decodeStoredClone (text: string, maxStateBytes = 8 * 1024 * 1024): StoredClone {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw new Error('not JSON (truncated?)')
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object')
  if (typeof raw.format === 'number' && raw.format > FILE_FORMAT) throw new NewerFormatError(`format ${raw.format}, this one reads ${FILE_FORMAT}`)
  if (raw.format !== FILE_FORMAT && raw.format !== 1) throw new Error(`unknown format ${String(raw.format)} (expected 1 to ${FILE_FORMAT})`)
  const { address, bundle, owner, limits, state, version, epoch, replies } = raw
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
  return out
}

function checkLimits (raw: unknown): CellLimits {
  const l = raw as Partial<Record<keyof CellLimits, unknown>>
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0
  if (raw === null || typeof raw !== 'object' || !positive(l.memory) || !positive(l.timeout) || !positive(l.mailbox)) throw new Error('limits are not positive whole numbers')
  return { memory: l.memory, timeout: l.timeout, mailbox: l.mailbox }
}
