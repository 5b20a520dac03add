// Durable file replacement: write a temp file beside the target, fsync it, rename it over
// the target, then fsync the directory so the rename itself survives a power cut.
// Readers see either the old or the new content, never a torn file. And durable directory
// creation: a new directory's entry lives in its parent, which needs its own fsync.
import { mkdir, open, rename, unlink } from 'node:fs/promises'
import { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync } from 'node:fs'
import { dirname, basename, join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'

export interface AtomicWriteOptions {
  /** file mode of the new file, e.g. 0o600 for keys */
  mode?: number
}

function tempPathFor (path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
}

export async function writeFileAtomic (path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempPathFor(path)
  const handle = await open(tmp, 'wx', options.mode ?? 0o644)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await handle.close()
  try {
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fsyncDir(dirname(path))
}

export function writeFileAtomicSync (path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const tmp = tempPathFor(path)
  const fd = openSync(tmp, 'wx', options.mode ?? 0o644)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    try { unlinkSync(tmp) } catch {}
    throw err
  }
  closeSync(fd)
  renameSync(tmp, path)
  const dirFd = openSync(dirname(path), 'r')
  try { fsyncSync(dirFd) } finally { closeSync(dirFd) }
}

export async function fsyncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

/** What mkdirDurable needs of a file system: node:fs (nodeDirOps), or the WAL's port in the simulation. */
export interface DirOps {
  /** creates `dir` and its missing parents; resolves to the first directory it created, if any */
  mkdir: (dir: string) => Promise<string | undefined>
  fsyncDir: (dir: string) => Promise<void>
}

export function nodeDirOps (mode?: number): DirOps {
  return { mkdir: async dir => await mkdir(dir, { recursive: true, mode }), fsyncDir }
}

/**
 * Creates `dir` and its missing parents, and fsyncs the parent of each directory it created
 * (top down) and `dir`'s own parent even if it existed (a run that created it may have died
 * before that fsync). Without it a power cut can take away a new directory together with
 * the fsynced files in it.
 */
export async function mkdirDurable (dir: string, ops: DirOps = nodeDirOps()): Promise<void> {
  const created = await ops.mkdir(dir)
  const first = created === undefined ? undefined : resolve(created)
  const parents: string[] = []
  for (let d = resolve(dir); ; d = dirname(d)) {
    parents.unshift(dirname(d))
    if (first === undefined || d === first || d === dirname(d)) break
  }
  for (const parent of parents) await ops.fsyncDir(parent)
}
