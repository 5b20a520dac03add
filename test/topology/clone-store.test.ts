// The on-disk store of held clones: write, restore, coalesced writes, removal, and files
// that are corrupt, truncated, forged for another instance, oversized or left half-written.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloneStore, decodeStoredClone, encodeStoredClone } from '../../src/topology/clone-store.js'
import type { StoredClone } from '../../src/topology/clone-store.js'

const BUNDLE = 'ab'.repeat(32)
const clone = (over: Partial<StoredClone> = {}): StoredClone => ({
  address: 'shop/counter#0',
  bundle: BUNDLE,
  owner: new Uint8Array([8, 1, 18, 32, ...new Array(32).fill(7)]),
  limits: { memory: 16 * 2 ** 20, timeout: 100, mailbox: 1000 },
  state: '{"count":3}',
  version: 3,
  ...over
})

describe('clone store: held clones on disk', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-clones-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes clones and restores them after a restart', async () => {
    const store = new CloneStore(join(dir, 'clones'))
    await store.save(clone())
    await store.save(clone({ address: 'shop/counter#1', state: undefined, version: -1, limits: undefined }))
    const restored = await new CloneStore(join(dir, 'clones')).loadAll()
    assert.deepEqual(restored.dropped, [])
    assert.deepEqual(restored.clones, [clone(), clone({ address: 'shop/counter#1', state: undefined, version: -1, limits: undefined })])
  })

  it('keeps the reply window in the same file as its state; a file of format 1 (no window) loads as it was', async () => {
    const store = new CloneStore(dir)
    const replies = JSON.stringify([['AAAAAAAAAAAAAAAAAAAAAA', Date.now(), '7']])
    await store.save(clone({ state: '{"count":7}', version: 7, replies }))
    const old = JSON.parse(encodeStoredClone(clone({ address: 'shop/counter#1', state: '{"count":3}', version: 3 }))) as Record<string, unknown>
    await writeFile(join(dir, 'shop%2Fcounter%231.json'), JSON.stringify({ ...old, format: 1 }))
    const { clones, dropped } = await new CloneStore(dir).loadAll()
    assert.deepEqual(dropped, [])
    assert.deepEqual(clones.map(c => [c.address, c.version, c.replies]), [['shop/counter#0', 7, replies], ['shop/counter#1', 3, undefined]])
  })

  it('an empty or missing directory restores nothing', async () => {
    assert.deepEqual(await new CloneStore(join(dir, 'none')).loadAll(), { clones: [], dropped: [], damaged: [], legacy: [] })
  })

  it('coalesces a burst of states into few writes, the newest last', async () => {
    const store = new CloneStore(dir)
    const writes = Array.from({ length: 50 }, (_, i) => store.save(clone({ state: `{"count":${i}}`, version: i })))
    await Promise.all(writes)
    const { clones } = await store.loadAll()
    assert.equal(clones.length, 1)
    assert.equal(clones[0].version, 49)
    assert.equal(clones[0].state, '{"count":49}')
  })

  it('write-behind (durability memory): a write starts only after its pause, never in the turn of the reply; a `now` save (disk) does not wait', async () => {
    const store = new CloneStore(dir, { minWriteIntervalMs: 5000 })
    void store.save(clone())
    // written at once, and on disk when this resolves: the write-behind one has not started
    await store.save(clone({ address: 'shop/counter#1' }), { now: true })
    assert.deepEqual(await readdir(dir), [`${encodeURIComponent('shop/counter#1')}.json`])
    void store.remove('shop/counter#0')
  })

  it('removes a clone (after its write in flight) and keeps one saved again meanwhile', async () => {
    const store = new CloneStore(dir)
    void store.save(clone())
    await store.remove('shop/counter#0')
    assert.deepEqual((await store.loadAll()).clones, [])
    await store.remove('shop/counter#0') // gone already: no error
    await store.save(clone())
    const removing = store.remove('shop/counter#0')
    const again = store.save(clone({ state: '{"count":4}', version: 4 }))
    await Promise.all([removing, again])
    await store.flush()
    assert.deepEqual((await store.loadAll()).clones.map(c => c.version), [4])
  })

  it('corrupt, truncated, forged, oversized and half-written files: a clear line naming the file, moved aside (.corrupt), no crash; newer-format files left in place; good ones kept', async () => {
    const store = new CloneStore(dir, { maxStateBytes: 1000 })
    await store.save(clone({ address: 'shop/good#0' }))
    const good = encodeStoredClone(clone())
    const bad: Record<string, string> = {
      'shop%2Ftruncated%230.json': good.slice(0, good.length - 7),
      'shop%2Fgarbage%230.json': '\u0000\u0001binary',
      'shop%2Farray%230.json': '[]',
      'shop%2Fformat%230.json': good.replace('"format":2', '"format":9'),
      'shop%2Fforged%230.json': good, // holds shop/counter#0 under another instance's name
      'shop%2Fversion%230.json': encodeStoredClone(clone({ address: 'shop/version#0', version: 1.5 })),
      'shop%2Fstate%230.json': encodeStoredClone(clone({ address: 'shop/state#0', state: 'not json' })),
      'shop%2Fbig%230.json': encodeStoredClone(clone({ address: 'shop/big#0', state: JSON.stringify('x'.repeat(2000)) })),
      'shop%2Fbundle%230.json': encodeStoredClone(clone({ address: 'shop/bundle#0', bundle: 'zz' })),
      'shop%2Flimits%230.json': encodeStoredClone(clone({ address: 'shop/limits#0', limits: { memory: -1, timeout: 1, mailbox: 1 } })),
      'shop%2Fowner%230.json': encodeStoredClone(clone({ address: 'shop/owner#0', owner: new Uint8Array(0) })),
      'shop%2Fmismatch%230.json': encodeStoredClone(clone({ address: 'shop/mismatch#0', state: undefined })),
      'shop%2Freplies%230.json': encodeStoredClone(clone({ address: 'shop/replies#0', replies: '[["k",1,"1"],["j",0' }))
    }
    for (const [name, text] of Object.entries(bad)) await writeFile(join(dir, name), text)
    await writeFile(join(dir, '.shop%2Fgood%230.json.0123456789ab.tmp'), 'half a write')
    await writeFile(join(dir, 'README'), 'not a clone file: left alone')
    const { clones, dropped } = await new CloneStore(dir, { maxStateBytes: 1000 }).loadAll()
    assert.deepEqual(clones.map(c => c.address), ['shop/good#0'])
    assert.equal(dropped.length, Object.keys(bad).length)
    for (const line of dropped) {
      if (line.includes('format%23')) assert.match(line, /^\S+shop%2Fformat%230\.json was written by a newer version of stem \(format 9, this one reads 2\): left in place/)
      else assert.match(line, /^\S+\.json is damaged \(.+\): moved to \S+\.json\.corrupt, not used$/)
      assert.ok(!line.includes('\n'))
    }
    assert.match(dropped.find(l => l.includes('forged')) ?? '', /holds shop\/counter#0, another instance/)
    assert.match(dropped.find(l => l.includes('truncated')) ?? '', /not JSON/)
    assert.match(dropped.find(l => l.includes('big')) ?? '', /at most 1000 characters/)
    assert.match(dropped.find(l => l.includes('mismatch')) ?? '', /state and version disagree/)
    assert.match(dropped.find(l => l.includes('replies')) ?? '', /reply window is not JSON \(truncated\?\)/)
    const expected = ['README', 'shop%2Fformat%230.json', 'shop%2Fgood%230.json', ...Object.keys(bad).filter(n => !n.includes('format')).map(n => `${n}.corrupt`)]
    assert.deepEqual((await readdir(dir)).sort(), expected.sort())
    // moved-aside files are not read again
    assert.equal((await new CloneStore(dir, { maxStateBytes: 1000 }).loadAll()).dropped.length, 1)
    assert.equal(await readFile(join(dir, 'README'), 'utf8'), 'not a clone file: left alone')
  })

  it('tells a state file of an earlier stem (address, hash, version, state; no format) from a damaged one', async () => {
    const legacy = { address: 'shop/counter#0', hash: 'ab'.repeat(32), version: 7, state: '{"count":7}' }
    await writeFile(join(dir, 'shop%2Fcounter%230.json'), JSON.stringify(legacy))
    await writeFile(join(dir, 'shop%2Fother%230.json'), JSON.stringify({ ...legacy, address: 'shop/other#0', state: 'not json' }))
    const loaded = await new CloneStore(dir).loadAll()
    assert.deepEqual(loaded.legacy, [{ address: 'shop/counter#0', bundle: legacy.hash, state: legacy.state, version: 7, file: join(dir, 'shop%2Fcounter%230.json') }])
    assert.deepEqual(loaded.damaged, ['shop/other#0'])
  })

  it('decodes what it encodes and refuses what it cannot', () => {
    assert.deepEqual(decodeStoredClone(encodeStoredClone(clone())), clone())
    assert.throws(() => decodeStoredClone('null'), /not a JSON object/)
    assert.throws(() => decodeStoredClone(encodeStoredClone(clone({ address: '../../etc#0' }))), /address is not app\/cell#i/)
  })
})
