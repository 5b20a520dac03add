// Durable directory creation: the parent of each directory created gets an fsync, top down.
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mkdirDurable, nodeDirOps } from '../../src/util/atomic-file.js'
import type { DirOps } from '../../src/util/atomic-file.js'

/** node's directory calls, recording the fsyncs */
function recording (mode?: number): { ops: DirOps, fsynced: string[] } {
  const node = nodeDirOps(mode)
  const fsynced: string[] = []
  return { ops: { mkdir: node.mkdir, fsyncDir: async dir => { fsynced.push(dir); await node.fsyncDir(dir) } }, fsynced }
}

describe('util/atomic-file: mkdirDurable', () => {
  let root: string
  beforeEach(async () => { root = await mkdtemp(join(tmpdir(), 'stem-mkdir-')) })
  afterEach(async () => { await rm(root, { recursive: true, force: true }) })

  it('fsyncs the parent of every directory it creates, top down', async () => {
    const { ops, fsynced } = recording()
    await mkdirDurable(join(root, 'a', 'b', 'c'), ops)
    assert.ok((await stat(join(root, 'a', 'b', 'c'))).isDirectory())
    assert.deepEqual(fsynced, [root, join(root, 'a'), join(root, 'a', 'b')])
  })

  it('fsyncs the parent of a directory that exists (a run that made it may have died before its fsync)', async () => {
    await mkdirDurable(join(root, 'a'))
    const { ops, fsynced } = recording()
    await mkdirDurable(join(root, 'a'), ops)
    assert.deepEqual(fsynced, [root])
  })

  it('takes a relative path and a mode', async () => {
    const { ops, fsynced } = recording(0o700)
    const cwd = process.cwd()
    process.chdir(root)
    try {
      await mkdirDurable(join('x', 'y'), ops)
    } finally {
      process.chdir(cwd)
    }
    assert.deepEqual(fsynced, [root, join(root, 'x')])
    assert.equal((await stat(join(root, 'x', 'y'))).mode & 0o777, 0o700)
  })

  it('fails, naming the path, where a file stands in the way, and fsyncs nothing', async () => {
    await writeFile(join(root, 'f'), '')
    const { ops, fsynced } = recording()
    await assert.rejects(mkdirDurable(join(root, 'f', 'x'), ops), (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR' && err.message.includes(join(root, 'f')))
    assert.deepEqual(fsynced, [])
  })
})
