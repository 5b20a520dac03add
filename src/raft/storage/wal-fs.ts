// The file-system calls the disk WAL makes, as a port: production passes nothing and gets
// node:fs (nodeWalFs); the Raft simulation passes a simulated disk with storage faults
// (src/raft/sim/sim-fs.ts), so the same WAL code runs under seeded crashes and bit flips.
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises'
import { fsyncDir, writeFileAtomic } from '../../util/atomic-file.js'

/** An open file of the WAL: positioned writes, (data)sync, truncate. */
export interface WalFileHandle {
  write: (buf: Uint8Array, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>
  /** fdatasync: the file's data (and its size) are durable once this resolves */
  datasync: () => Promise<void>
  /** fsync: data and metadata */
  sync: () => Promise<void>
  truncate: (length: number) => Promise<void>
  close: () => Promise<void>
}

export interface WalFs {
  /** creates `dir` and its missing parents; resolves to the first directory it created, if any (the WAL makes them durable: mkdirDurable) */
  mkdir: (dir: string) => Promise<string | undefined>
  readdir: (dir: string) => Promise<string[]>
  /** rejects with code ENOENT when `path` does not exist */
  readFile: (path: string) => Promise<Uint8Array>
  /** 'wx': create a new file (fails if it exists); 'r+': open an existing one for writing */
  open: (path: string, flags: 'wx' | 'r+') => Promise<WalFileHandle>
  unlink: (path: string) => Promise<void>
  /** replaces `path` atomically and durably (temp file, fsync, rename, fsync of the directory) */
  writeFileAtomic: (path: string, data: Uint8Array) => Promise<void>
  /** makes the directory's entries (created, renamed, removed files) durable */
  fsyncDir: (dir: string) => Promise<void>
}

export const nodeWalFs: WalFs = {
  mkdir: async dir => await mkdir(dir, { recursive: true }),
  readdir: async dir => await readdir(dir),
  readFile: async path => await readFile(path),
  open: async (path, flags) => await open(path, flags),
  unlink: async path => { await unlink(path) },
  writeFileAtomic: async (path, data) => { await writeFileAtomic(path, data) },
  fsyncDir
}
