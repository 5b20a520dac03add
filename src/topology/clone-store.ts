// The clones a node holds, on its disk (<dataDir>/clones/<address>.json, atomic write +
// fsync), so that a node restarted while it was an instance's clone can still be promoted
// with the state it held.
//
// Writes are write-behind: the clone answers the primary once the state is in its memory
// (that is what "held" means for the reply gate, README "Durability"), and the file
// follows — at once after a quiet spell, else at most one write per clone every
// `minWriteIntervalMs`, always of the newest state, so a busy instance costs its clone a
// few fsyncs per second, not one per message.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { CellLimits } from '../cells/limits.js'

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
}

export interface CloneStoreInit {
  /** largest state accepted from a file, characters (default 8 MiB) */
  maxStateBytes?: number
  /** ms between two writes of one clone (default 100) */
  minWriteIntervalMs?: number
}

/** what loadAll found: the clones, and one line per file it dropped */
export interface LoadedClones {
  clones: StoredClone[]
  dropped: string[]
}

const INSTANCE = /^[a-z0-9][a-z0-9-]{0,62}\/[A-Za-z0-9_-]+#\d+$/i
const FILE_FORMAT = 1
const MAX_OWNER_BYTES = 256

export class CloneStore {
  private readonly queued = new Map<string, StoredClone>()
  private readonly writing = new Map<string, Promise<void>>()
  /** saves per clone, so a remove can tell whether the clone was saved again meanwhile */
  private readonly saves = new Map<string, number>()
  private readonly maxStateBytes: number
  private readonly minWriteIntervalMs: number
  private ready: Promise<unknown> | undefined

  constructor (readonly dir: string, init: CloneStoreInit = {}) {
    this.maxStateBytes = init.maxStateBytes ?? 8 * 1024 * 1024
    this.minWriteIntervalMs = init.minWriteIntervalMs ?? 100
  }

  private file (address: string): string {
    return join(this.dir, `${encodeURIComponent(address)}.json`)
  }

  /** Queues the clone for writing; settles once it (or a newer record of it) is on disk. */
  async save (clone: StoredClone): Promise<void> {
    this.queued.set(clone.address, clone)
    this.saves.set(clone.address, (this.saves.get(clone.address) ?? 0) + 1)
    const inFlight = this.writing.get(clone.address)
    if (inFlight !== undefined) return await inFlight
    const run = (async () => {
      this.ready ??= mkdir(this.dir, { recursive: true })
      await this.ready
      for (let first = true; ; first = false) {
        // states arriving during the pause are folded into one write
        if (!first) await new Promise(resolve => setTimeout(resolve, this.minWriteIntervalMs))
        const next = this.queued.get(clone.address)
        if (next === undefined) break
        this.queued.delete(clone.address)
        await writeFileAtomic(this.file(clone.address), encodeStoredClone(next))
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
    await unlink(this.file(address)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }

  /** Every stored clone. A file that cannot be read as one is deleted and reported in `dropped`. */
  async loadAll (): Promise<LoadedClones> {
    const out: LoadedClones = { clones: [], dropped: [] }
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
        const clone = decodeStoredClone(await readFile(path, 'utf8'), this.maxStateBytes)
        if (this.file(clone.address) !== path) throw new Error(`it holds ${clone.address}, another instance than its name says`)
        out.clones.push(clone)
      } catch (err) {
        out.dropped.push(`clone file ${path} is corrupt and was deleted: ${(err as Error).message}`)
        await unlink(path).catch(() => {})
      }
    }
    return out
  }

  /** Waits for every queued write. */
  async flush (): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing.values()])
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
    version: c.version
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
  if (raw.format !== FILE_FORMAT) throw new Error(`unknown format ${String(raw.format)} (expected ${FILE_FORMAT})`)
  const { address, bundle, owner, limits, state, version } = raw
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
  return { address, bundle, owner: ownerBytes, limits: limits === undefined ? undefined : checkLimits(limits), state, version }
}

function checkLimits (raw: unknown): CellLimits {
  const l = raw as Partial<Record<keyof CellLimits, unknown>>
  const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0
  if (raw === null || typeof raw !== 'object' || !positive(l.memory) || !positive(l.timeout) || !positive(l.mailbox)) throw new Error('limits are not positive whole numbers')
  return { memory: l.memory, timeout: l.timeout, mailbox: l.mailbox }
}
