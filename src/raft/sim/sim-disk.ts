// What a simulated server persists its Raft log into, and what of it survives a crash:
// - MemorySimDisk: a MemoryLogStorage; a Ready is durable as soon as it is handed over and
//   a crash loses nothing of it (the storage model the core is written against);
// - WalSimDisk: the real disk WAL (DiskLogStorage) on a simulated file system with storage
//   faults (SimFs): a crash at any write, a power cut that keeps only fsynced bytes (a torn
//   tail at most), bit flips in fsynced bytes, which the WAL must refuse on restart.
// Both persist a Ready as the multi-group host does (src/raft/multi/raft-host.ts).
import type { ConfState, LogStorage, Ready } from '../types.js'
import { MemoryLogStorage } from '../core/memory-storage.js'
import { DiskLogStorage, WalCorruptError } from '../storage/disk-log-storage.js'
import { NO_DISK_FAULTS } from './sim-fs.js'
import type { BitFlip, SimFs } from './sim-fs.js'

export interface SimDisk {
  /** the storage the node's core reads (after open) */
  readonly storage: LogStorage
  /** recovers the storage, as a server starting up does; false if it cannot (a violation was recorded) */
  open: () => Promise<boolean>
  /** makes a Ready's snapshot, entries and hard state durable */
  persist: (rd: Ready) => Promise<void>
  /** records the membership once a conf change is applied */
  setConfState: (conf: ConfState) => void
  /** saves the state machine's snapshot at applied `index`, then drops the log before `compactTo` */
  snapshot: (index: number, conf: ConfState, data: Uint8Array, compactTo: number) => Promise<void>
  /** the server lost power: only what was durable remains */
  crash: () => void
  /** whether the disk lost power in the middle of a call (so that call's failure is the crash, not a bug) */
  readonly poweredOff: boolean
}

export class MemorySimDisk implements SimDisk {
  readonly storage = new MemoryLogStorage()
  readonly poweredOff = false

  async open (): Promise<boolean> {
    return true
  }

  async persist (rd: Ready): Promise<void> {
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot)
    this.storage.append(rd.entries)
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState)
  }

  /** MemoryLogStorage takes the membership from its snapshot */
  setConfState (): void {}

  async snapshot (index: number, conf: ConfState, data: Uint8Array, compactTo: number): Promise<void> {
    this.storage.createSnapshot(index, conf, data)
    if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo)
  }

  crash (): void {}
}

/** the files of a WAL directory a bit flip may hit */
const WAL_FILE = /^(wal-[0-9a-f]{16}\.log|snapshot)$/

export interface WalSimDiskInit {
  segmentBytes: number
  /** whether this restart finds a bit flipped in the fsynced files of the WAL (drawn from the seed) */
  flip: () => boolean
  /** a bit flip that the WAL did not refuse, or a log it refused that only crashes touched */
  violation: (what: string) => void
  trace?: (line: string) => void
}

export class WalSimDisk implements SimDisk {
  private wal: DiskLogStorage | undefined

  constructor (readonly fs: SimFs, private readonly dir: string, private readonly init: WalSimDiskInit) {}

  get storage (): DiskLogStorage {
    if (this.wal === undefined) throw new Error(`sim: the WAL in ${this.dir} is not open`)
    return this.wal
  }

  get poweredOff (): boolean {
    return this.fs.down
  }

  async open (): Promise<boolean> {
    this.wal = undefined
    const flip = this.init.flip() ? this.fs.flipBit(WAL_FILE) : undefined
    if (flip !== undefined) await this.expectRefused(flip)
    try {
      this.wal = await DiskLogStorage.open(this.dir, { fs: this.fs, segmentBytes: this.init.segmentBytes })
      return true
    } catch (err) {
      if (!(err instanceof WalCorruptError)) throw err
      this.init.violation(`storage: the WAL refused a log that only crashes touched: ${err.message}`)
      return false
    }
  }

  async persist (rd: Ready): Promise<void> {
    const wal = this.storage
    if (rd.snapshot !== undefined) await wal.applySnapshot(rd.snapshot)
    wal.append(rd.entries)
    if (rd.hardState !== undefined) wal.setHardState(rd.hardState)
    await wal.sync()
  }

  setConfState (conf: ConfState): void {
    this.storage.setConfState(conf)
  }

  async snapshot (index: number, conf: ConfState, data: Uint8Array, compactTo: number): Promise<void> {
    const wal = this.storage
    await wal.createSnapshot(index, conf, data)
    if (compactTo > wal.firstIndex()) wal.compact(compactTo)
    await wal.sync()
  }

  crash (): void {
    this.wal = undefined
    this.fs.powerCut()
  }

  /** A WAL with a flipped bit must not open; then the bit is put back and the seed goes on. */
  private async expectRefused (flip: BitFlip): Promise<void> {
    const what = `bit ${flip.bit} of byte ${flip.offset} in ${flip.path}`
    // no crash in this probe: its outcome is the WAL's verdict alone
    const faults = this.fs.faults
    this.fs.faults = NO_DISK_FAULTS
    const outcome = await DiskLogStorage.open(this.dir, { fs: this.fs, segmentBytes: this.init.segmentBytes }).then(
      async wal => { await wal.close(); return 'opened' },
      (err: Error) => err instanceof WalCorruptError ? undefined : `failed otherwise: ${err.message}`)
    this.fs.faults = faults
    if (outcome !== undefined) this.init.violation(`storage: a flip of ${what} was not refused (the WAL ${outcome})`)
    else this.init.trace?.(`${this.dir}: a flip of ${what} refused`)
    // the node's own handling (set the log aside, rejoin as an empty member) is the
    // multi-group host's, beyond this simulation: the flip is undone and the node starts
    this.fs.applyFlip(flip)
  }
}
