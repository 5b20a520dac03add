// The cell runtime's own state files (<dataDir>/cells): write-behind, coalesced, removable.
import { describe, it, beforeEach, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CellStateStore } from '../../src/cells/state-store.js'

const entry = (address: string, version: number): { address: string, hash: string, version: number, state: string } =>
  ({ address, hash: 'ab'.repeat(32), version, state: `{"count":${version}}` })

describe('cells: state files', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-state-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('a write starts only after its pause, behind the reply that produced the state', async () => {
    const slow = new CellStateStore(dir, 5000)
    void slow.save(entry('shop/a#0', 1))
    // another store's write, started later, is on disk when this resolves
    await new CellStateStore(dir, 0).save(entry('shop/b#0', 1))
    assert.deepEqual(await readdir(join(dir, 'cells')), [`${encodeURIComponent('shop/b#0')}.json`])
    // a queued write is dropped by a removal
    await slow.remove('shop/a#0')
    assert.deepEqual(await readdir(join(dir, 'cells')), [`${encodeURIComponent('shop/b#0')}.json`])
  })

  it('the states of one pause share one write, the newest', async () => {
    const store = new CellStateStore(dir, 20)
    const saves = Array.from({ length: 30 }, (_, i) => store.save(entry('shop/a#0', i)))
    await Promise.all(saves)
    await store.flush()
    assert.equal((await store.load('shop/a#0'))?.version, 29)
  })
})
