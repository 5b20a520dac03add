// A simulated disk for the WAL (WalFs) with storage faults, as in TigerBeetle's VOPR: per
// file the bytes written and the bytes fsynced, per directory the entries as they are and
// as last fsynced. Every operation completes at once (its promise is already settled), so
// a seed replays exactly. Faults, all drawn from the PRNG it is given:
// - crash at any write: a mutating call may power the disk off (it throws SimCrashError,
//   and every later call does too) after applying its own change;
// - power cut (powerCut): each file keeps what was fsynced, and of what was written since,
//   nothing, or a torn prefix (cut short, or whole sectors that read back as zeros); a
//   directory keeps its entries as last fsynced, and a directory whose own entry was never
//   fsynced into its parent is gone with everything in it;
// - bit flip (flipBit): one bit of the fsynced bytes of a file changes, as a latent sector
//   error would (the WAL must refuse such a log, never read it as valid).
import { dirname, basename, join } from 'node:path'
import type { WalFileHandle, WalFs } from '../storage/wal-fs.js'
import { SECTOR_BYTES } from '../storage/wal-record.js'

export class SimCrashError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'SimCrashError'
  }
}

interface Inode {
  /** the file as written (what reads see) */
  data: Uint8Array
  /** the file as of its last fsync (what a power cut leaves, at least) */
  synced: Uint8Array
}

export interface SimFsFaults {
  /** chance that a mutating call powers the disk off (crash at any write) */
  crash: number
  /** chance that a power cut leaves a torn prefix of a file's unsynced bytes */
  torn: number
}

export const NO_DISK_FAULTS: SimFsFaults = { crash: 0, torn: 0 }

export interface BitFlip {
  path: string
  offset: number
  bit: number
}

function notFound (path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file: ${path}`), { code: 'ENOENT' })
}

export class SimFs implements WalFs {
  faults: SimFsFaults = NO_DISK_FAULTS
  /** powered off by a crash at a write: every call throws until powerCut() */
  down = false
  /** mutating calls made (for tests and traces) */
  writes = 0
  /** the directories as they are now (the root is always there) */
  private dirs = new Set<string>()
  /** the directories whose entry in their parent was fsynced */
  private durableDirs = new Set<string>()
  /** path -> file, as the directory entries are now */
  private names = new Map<string, Inode>()
  /** path -> file, as the directory entries were last fsynced */
  private durable = new Map<string, Inode>()
  /** bumped by every power cut: handles opened before it are dead */
  private boot = 0
  private tmpSeq = 0

  constructor (private readonly rand: () => number) {}

  // ---- WalFs ----

  async mkdir (dir: string): Promise<string | undefined> {
    this.mutating()
    let first: string | undefined
    for (let d = dir; !this.dirs.has(d) && d !== dirname(d); d = dirname(d)) {
      this.dirs.add(d)
      first = d
    }
    this.maybeCrash()
    return first
  }

  async readdir (dir: string): Promise<string[]> {
    this.alive()
    if (!this.isDir(dir)) throw notFound(dir)
    return [...this.names.keys()].filter(p => dirname(p) === dir).map(p => basename(p)).sort()
  }

  async readFile (path: string): Promise<Uint8Array> {
    this.alive()
    const inode = this.names.get(path)
    if (inode === undefined) throw notFound(path)
    return inode.data.slice()
  }

  async open (path: string, flags: 'wx' | 'r+'): Promise<WalFileHandle> {
    this.mutating()
    let inode = this.names.get(path)
    if (flags === 'wx') {
      if (inode !== undefined) throw Object.assign(new Error(`EEXIST: file exists: ${path}`), { code: 'EEXIST' })
      if (!this.isDir(dirname(path))) throw notFound(dirname(path))
      inode = { data: new Uint8Array(0), synced: new Uint8Array(0) }
      this.names.set(path, inode)
      this.maybeCrash()
    } else if (inode === undefined) {
      throw notFound(path)
    }
    return this.handleOf(inode)
  }

  async unlink (path: string): Promise<void> {
    this.mutating()
    if (!this.names.delete(path)) throw notFound(path)
    this.maybeCrash()
  }

  async writeFileAtomic (path: string, data: Uint8Array): Promise<void> {
    const tmp = join(dirname(path), `.${basename(path)}.${++this.tmpSeq}.tmp`)
    const handle = await this.open(tmp, 'wx')
    await handle.write(data, 0, data.length, 0)
    await handle.sync()
    await handle.close()
    await this.rename(tmp, path)
    await this.fsyncDir(dirname(path))
  }

  async fsyncDir (dir: string): Promise<void> {
    this.mutating()
    if (!this.isDir(dir)) throw notFound(dir)
    for (const d of this.dirs) if (dirname(d) === dir) this.durableDirs.add(d)
    for (const p of [...this.durable.keys()]) if (dirname(p) === dir && !this.names.has(p)) this.durable.delete(p)
    for (const [p, inode] of this.names) if (dirname(p) === dir) this.durable.set(p, inode)
    this.maybeCrash()
  }

  // ---- faults ----

  /** The power comes back after a cut: unsynced bytes and directory entries are lost, torn at most. */
  powerCut (): void {
    this.down = false
    this.boot++
    // a directory stays if its entry and those of all its ancestors were fsynced
    const kept = [...this.durableDirs].filter(d => this.reachable(d))
    this.dirs = new Set(kept)
    this.durableDirs = new Set(kept)
    for (const p of [...this.durable.keys()]) if (!this.isDir(dirname(p))) this.durable.delete(p)
    this.names = new Map(this.durable)
    // torn bytes were never fsynced: `synced` stays as it was, so the next cut may tear them again
    for (const inode of new Set(this.names.values())) inode.data = this.tear(inode)
  }

  /** Flips one bit of a file's fsynced bytes (files whose name matches `which`); undefined if none has any. */
  flipBit (which: RegExp): BitFlip | undefined {
    const files = [...this.names].filter(([p, inode]) => which.test(basename(p)) && inode.synced.length > 0)
    if (files.length === 0) return undefined
    const [path, inode] = files[Math.floor(this.rand() * files.length)]
    const flip = { path, offset: Math.floor(this.rand() * inode.synced.length), bit: Math.floor(this.rand() * 8) }
    this.applyFlip(flip)
    return flip
  }

  /** Flips the bit of `flip` (again: a flip is its own inverse). */
  applyFlip (flip: BitFlip): void {
    const inode = this.names.get(flip.path)
    if (inode === undefined) throw notFound(flip.path)
    const mask = 1 << flip.bit
    const flipped = (bytes: Uint8Array): Uint8Array => {
      const copy = bytes.slice()
      if (flip.offset < copy.length) copy[flip.offset] ^= mask
      return copy
    }
    const same = inode.data === inode.synced
    inode.synced = flipped(inode.synced)
    inode.data = same ? inode.synced : flipped(inode.data)
  }

  // ---- internals ----

  private handleOf (inode: Inode): WalFileHandle {
    const boot = this.boot
    const live = (): void => {
      this.alive()
      if (boot !== this.boot) throw new Error('sim fs: file handle from before a power cut')
    }
    return {
      write: async (buf, offset, length, position) => {
        live()
        this.mutating()
        const end = position + length
        const data = new Uint8Array(Math.max(end, inode.data.length))
        data.set(inode.data)
        data.set(buf.subarray(offset, offset + length), position)
        inode.data = data
        this.maybeCrash()
        return { bytesWritten: length }
      },
      datasync: async () => { live(); this.syncInode(inode) },
      sync: async () => { live(); this.syncInode(inode) },
      truncate: async length => {
        live()
        this.mutating()
        inode.data = inode.data.slice(0, length)
        this.maybeCrash()
      },
      close: async () => { live() }
    }
  }

  private syncInode (inode: Inode): void {
    this.mutating()
    inode.synced = inode.data
    this.maybeCrash()
  }

  /** What survives of a file: its synced bytes, or (torn) a prefix of what was written after them. */
  private tear (inode: Inode): Uint8Array {
    const { data, synced } = inode
    const grown = data.length > synced.length && synced.every((b, i) => data[i] === b)
    if (!grown || !(this.rand() < this.faults.torn)) return synced
    const keep = synced.length + 1 + Math.floor(this.rand() * (data.length - synced.length))
    const torn = data.slice(0, keep)
    // or the file's size made it to disk but its last sectors did not: they read as zeros
    const firstSector = Math.ceil(synced.length / SECTOR_BYTES) * SECTOR_BYTES
    if (firstSector < keep && this.rand() < 0.5) {
      const from = firstSector + SECTOR_BYTES * Math.floor(this.rand() * Math.ceil((keep - firstSector) / SECTOR_BYTES))
      torn.fill(0, from)
    }
    return torn
  }

  private isDir (dir: string): boolean {
    return dir === dirname(dir) || this.dirs.has(dir)
  }

  /** whether `dir` and every ancestor up to the root have a durable entry */
  private reachable (dir: string): boolean {
    for (let d = dir; d !== dirname(d); d = dirname(d)) if (!this.durableDirs.has(d)) return false
    return true
  }

  private alive (): void {
    if (this.down) throw new SimCrashError('sim fs: the disk is powered off')
  }

  private mutating (): void {
    this.alive()
    this.writes++
  }

  /** After a mutating call took effect: maybe the power goes now. */
  private maybeCrash (): void {
    if (this.faults.crash > 0 && this.rand() < this.faults.crash) {
      this.down = true
      throw new SimCrashError(`sim fs: crash at write ${this.writes}`)
    }
  }

  private async rename (from: string, to: string): Promise<void> {
    this.mutating()
    const inode = this.names.get(from)
    if (inode === undefined) throw notFound(from)
    this.names.delete(from)
    this.names.set(to, inode)
    this.maybeCrash()
  }
}
