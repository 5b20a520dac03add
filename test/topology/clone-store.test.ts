// The on-disk store of held clones: write, restore, coalesced writes, removal, and files
// that are corrupt, truncated, forged for another instance, oversized or left half-written.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloneStore, decodeStoredClone, encodeStoredClone } from '../../src/topology/clone-store.js'
import type { StoredClone } from '../../src/topology/clone-store.js'
import { encodeRecord, RecordType } from '../../src/raft/storage/wal-record.js'

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
  let opened: CloneStore[] = []
  const storeAt = (...args: ConstructorParameters<typeof CloneStore>): CloneStore => {
    const store = new CloneStore(...args)
    opened.push(store)
    return store
  }
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-clones-')) })
  afterEach(async () => {
    await Promise.all(opened.map(async s => { await s.close() }))
    opened = []
    await rm(dir, { recursive: true, force: true })
  })

  it('writes clones and restores them after a restart', async () => {
    const store = storeAt(join(dir, 'clones'))
    await store.save(clone())
    await store.save(clone({ address: 'shop/counter#1', state: undefined, version: -1, limits: undefined }))
    const restored = await storeAt(join(dir, 'clones')).loadAll()
    assert.deepEqual(restored.dropped, [])
    assert.deepEqual(restored.clones, [clone(), clone({ address: 'shop/counter#1', state: undefined, version: -1, limits: undefined })])
  })

  it('keeps the reply window in the same file as its state; a file of format 1 (no window) loads as it was', async () => {
    const store = storeAt(dir)
    const replies = JSON.stringify([['AAAAAAAAAAAAAAAAAAAAAA', Date.now(), '7']])
    await store.save(clone({ state: '{"count":7}', version: 7, replies }))
    const old = JSON.parse(encodeStoredClone(clone({ address: 'shop/counter#1', state: '{"count":3}', version: 3 }))) as Record<string, unknown>
    await writeFile(join(dir, 'shop%2Fcounter%231.json'), JSON.stringify({ ...old, format: 1 }))
    const { clones, dropped } = await storeAt(dir).loadAll()
    assert.deepEqual(dropped, [])
    assert.deepEqual(clones.map(c => [c.address, c.version, c.replies]), [['shop/counter#0', 7, replies], ['shop/counter#1', 3, undefined]])
  })

  it('an empty or missing directory restores nothing', async () => {
    assert.deepEqual(await storeAt(join(dir, 'none')).loadAll(), { clones: [], dropped: [], damaged: [], legacy: [] })
  })

  it('coalesces a burst of states into few writes, the newest last', async () => {
    const store = storeAt(dir)
    const writes = Array.from({ length: 50 }, (_, i) => store.save(clone({ state: `{"count":${i}}`, version: i })))
    await Promise.all(writes)
    const { clones } = await store.loadAll()
    assert.equal(clones.length, 1)
    assert.equal(clones[0].version, 49)
    assert.equal(clones[0].state, '{"count":49}')
  })

  it('write-behind (durability memory): a write starts only after its pause, never in the turn of the reply; a `now` save (disk) does not wait', async () => {
    const store = storeAt(dir, { minWriteIntervalMs: 5000 })
    void store.save(clone())
    // written at once, and on disk when this resolves: the write-behind one has not started
    await store.save(clone({ address: 'shop/counter#1' }), { now: true })
    assert.deepEqual((await readdir(dir)).sort(), [`${encodeURIComponent('shop/counter#1')}.json`, `${encodeURIComponent('shop/counter#1')}.log`])
    void store.remove('shop/counter#0')
  })

  it('removes a clone (after its write in flight) and keeps one saved again meanwhile', async () => {
    const store = storeAt(dir)
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
    const store = storeAt(dir, { maxStateBytes: 1000 })
    await store.save(clone({ address: 'shop/good#0' }))
    const good = encodeStoredClone(clone())
    const bad: Record<string, string> = {
      'shop%2Ftruncated%230.json': good.slice(0, good.length - 7),
      'shop%2Fgarbage%230.json': '\u0000\u0001binary',
      'shop%2Farray%230.json': '[]',
      'shop%2Fformat%230.json': good.replace('"format":3', '"format":9'),
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
    const { clones, dropped } = await storeAt(dir, { maxStateBytes: 1000 }).loadAll()
    assert.deepEqual(clones.map(c => c.address), ['shop/good#0'])
    assert.equal(dropped.length, Object.keys(bad).length)
    for (const line of dropped) {
      if (line.includes('format%23')) assert.match(line, /^\S+shop%2Fformat%230\.json was written by a newer version of stem \(format 9, this one reads 3\): left in place/)
      else assert.match(line, /^\S+\.json is damaged \(.+\): moved to \S+\.json\.corrupt, not used$/)
      assert.ok(!line.includes('\n'))
    }
    assert.match(dropped.find(l => l.includes('forged')) ?? '', /holds shop\/counter#0, another instance/)
    assert.match(dropped.find(l => l.includes('truncated')) ?? '', /not JSON/)
    assert.match(dropped.find(l => l.includes('big')) ?? '', /at most 1000 characters/)
    assert.match(dropped.find(l => l.includes('mismatch')) ?? '', /state and version disagree/)
    assert.match(dropped.find(l => l.includes('replies')) ?? '', /reply window is not JSON \(truncated\?\)/)
    const expected = ['README', 'shop%2Fformat%230.json', 'shop%2Fgood%230.json', 'shop%2Fgood%230.log', ...Object.keys(bad).filter(n => !n.includes('format')).map(n => `${n}.corrupt`)]
    assert.deepEqual((await readdir(dir)).sort(), expected.sort())
    // moved-aside files are not read again
    assert.equal((await storeAt(dir, { maxStateBytes: 1000 }).loadAll()).dropped.length, 1)
    assert.equal(await readFile(join(dir, 'README'), 'utf8'), 'not a clone file: left alone')
  })

  it('tells a state file of an earlier stem (address, hash, version, state; no format) from a damaged one', async () => {
    const legacy = { address: 'shop/counter#0', hash: 'ab'.repeat(32), version: 7, state: '{"count":7}' }
    await writeFile(join(dir, 'shop%2Fcounter%230.json'), JSON.stringify(legacy))
    await writeFile(join(dir, 'shop%2Fother%230.json'), JSON.stringify({ ...legacy, address: 'shop/other#0', state: 'not json' }))
    const loaded = await storeAt(dir).loadAll()
    assert.deepEqual(loaded.legacy, [{ address: 'shop/counter#0', bundle: legacy.hash, state: legacy.state, version: 7, file: join(dir, 'shop%2Fcounter%230.json') }])
    assert.deepEqual(loaded.damaged, ['shop/other#0'])
  })

  describe('the append log beside each base file', () => {
    const base = (): string => join(dir, 'shop%2Fcounter%230.json')
    const log = (): string => join(dir, 'shop%2Fcounter%230.log')
    const count = (i: number): StoredClone => clone({ state: `{"count":${i}}`, version: i })
    const saveAll = async (store: CloneStore, from: number, to: number): Promise<void> => {
      for (let i = from; i <= to; i++) await store.save(count(i), { now: true })
    }
    const loaded = async (): Promise<{ versions: number[], dropped: string[], damaged: string[] }> => {
      const out = await storeAt(dir).loadAll()
      return { versions: out.clones.map(c => c.version), dropped: out.dropped, damaged: out.damaged }
    }

    it('writes the first record as the base and the next ones as synced appends; a restarted store goes on appending', async () => {
      const store = storeAt(dir)
      await saveAll(store, 1, 5)
      assert.equal(decodeStoredClone(await readFile(base(), 'utf8')).version, 1, 'the base holds the first record')
      assert.ok((await stat(log())).size > 0, 'the others are in the log')
      assert.deepEqual(await loaded(), { versions: [5], dropped: [], damaged: [] })
      assert.equal((await store.read('shop/counter#0'))?.version, 5)
      const again = storeAt(dir)
      await again.loadAll()
      await saveAll(again, 6, 7)
      assert.equal(decodeStoredClone(await readFile(base(), 'utf8')).version, 1)
      assert.deepEqual(await loaded(), { versions: [7], dropped: [], damaged: [] })
    })

    it('compacts a long log into the base and empties it', async () => {
      const store = storeAt(dir)
      const big = (i: number): StoredClone => clone({ state: JSON.stringify({ i, pad: 'x'.repeat(100_000) }), version: i })
      let compactions = 0
      let before = 0
      for (let i = 1; i <= 12; i++) {
        await store.save(big(i), { now: true })
        const size = (await stat(log())).size
        if (size < before) compactions++
        before = size
        assert.equal((await store.read('shop/counter#0'))?.version, i)
      }
      assert.ok(compactions >= 2, `compacted ${compactions} times`)
      assert.ok(before <= 5 * 100_200, `the log stays short: ${before} bytes`)
      assert.deepEqual((await loaded()).versions, [12])
    })

    it('a crash between a compaction\'s base write and its truncation of the log: the base is newer than every record left in the log', async () => {
      const store = storeAt(dir)
      await saveAll(store, 1, 4)
      const stale = await readFile(log())
      await saveAll(store, 5, 5)
      // the base as a later compaction wrote it, the log as it was before that compaction emptied it
      await writeFile(base(), encodeStoredClone(count(9), 100))
      await writeFile(log(), stale)
      assert.deepEqual((await loaded()).versions, [9])
    })

    it('a record written again at the end (replayed) is not taken for the newest', async () => {
      const store = storeAt(dir)
      await saveAll(store, 1, 3)
      const bytes = await readFile(log())
      const first = bytes.subarray(0, bytes.length / 2)
      await writeFile(log(), Buffer.concat([bytes, first]))
      assert.deepEqual((await loaded()).versions, [3])
    })

    it('a torn tail (an append cut short, or its sectors never written) is left out, cut off, and appends go on after the last whole record', async () => {
      for (const tear of ['short', 'zeros'] as const) {
        await rm(dir, { recursive: true, force: true })
        const store = storeAt(dir)
        await saveAll(store, 1, 3)
        const whole = await readFile(log())
        await saveAll(store, 4, 4)
        const full = await readFile(log())
        const torn = tear === 'short' ? full.subarray(0, whole.length + 20) : Buffer.concat([full.subarray(0, whole.length), Buffer.alloc(full.length - whole.length)])
        await writeFile(log(), torn)
        assert.deepEqual(await loaded(), { versions: [3], dropped: [], damaged: [] }, tear)
        assert.equal((await readFile(log())).length, torn.length, 'loading alone changes nothing')
        const next = storeAt(dir)
        await next.loadAll()
        await saveAll(next, 5, 5)
        assert.deepEqual((await loaded()).versions, [5], tear)
      }
    })

    it('damage that is not a torn tail (a flipped bit with whole records after it, or in a complete last record), a record of another kind or instance: one line, both files moved aside, the copy reported damaged', async () => {
      const cases: Record<string, (bytes: Buffer) => Buffer | Promise<Buffer>> = {
        'a bit flipped in the middle': bytes => { const b = Buffer.from(bytes); b[30] ^= 0x04; return b },
        'a bit flipped in the last record': bytes => { const b = Buffer.from(bytes); b[b.length - 5] ^= 0x01; return b },
        'a record of another kind': bytes => Buffer.concat([bytes, Buffer.from(encodeRecord(RecordType.Entry, Buffer.from('{}')))]),
        'a record of another instance': bytes => Buffer.concat([bytes, Buffer.from(encodeRecord(RecordType.InstanceCopy, Buffer.from(encodeStoredClone(clone({ address: 'shop/other#0' }), 50))))]),
        'a record that is not a clone': bytes => Buffer.concat([bytes, Buffer.from(encodeRecord(RecordType.InstanceCopy, Buffer.from('{"format":3,"seq":60}')))])
      }
      for (const [what, damage] of Object.entries(cases)) {
        await rm(dir, { recursive: true, force: true })
        await saveAll(storeAt(dir), 1, 4)
        await writeFile(log(), await damage(await readFile(log())))
        await assert.rejects(storeAt(dir).read('shop/counter#0'), /counter%230\.log: /, what)
        const { versions, dropped, damaged } = await loaded()
        assert.deepEqual([versions, damaged], [[], ['shop/counter#0']], what)
        assert.equal(dropped.length, 1, what)
        assert.match(dropped[0], /^\S+counter%230\.log is damaged \(.+\): moved to shop%2Fcounter%230\.json\.corrupt and shop%2Fcounter%230\.log\.corrupt, not used$/, what)
        assert.deepEqual((await readdir(dir)).sort(), ['shop%2Fcounter%230.json.corrupt', 'shop%2Fcounter%230.log.corrupt'], what)
      }
    })

    it('a log without its base (a removal cut short) still restores its newest record; a removal takes both files', async () => {
      const store = storeAt(dir)
      await saveAll(store, 1, 3)
      await rm(base())
      assert.deepEqual((await loaded()).versions, [3])
      const next = storeAt(dir)
      await next.loadAll()
      await saveAll(next, 4, 4)
      assert.equal(decodeStoredClone(await readFile(base(), 'utf8')).version, 4, 'written as a new base')
      assert.deepEqual((await loaded()).versions, [4])
      await next.remove('shop/counter#0')
      assert.deepEqual(await readdir(dir), [])
    })

    it('many instances: logs past the open limit are closed and reopened, nothing lost', async () => {
      const store = storeAt(dir)
      const addresses = Array.from({ length: 140 }, (_, i) => `shop/counter#${i}`)
      for (const round of [1, 2, 3]) await Promise.all(addresses.map(async address => await store.save(clone({ address, state: `{"count":${round}}`, version: round }), { now: true })))
      const out = await storeAt(dir).loadAll()
      assert.equal(out.clones.length, 140)
      assert.ok(out.clones.every(c => c.version === 3))
    })
  })

  it('decodes what it encodes and refuses what it cannot', () => {
    assert.deepEqual(decodeStoredClone(encodeStoredClone(clone())), clone())
    assert.throws(() => decodeStoredClone('null'), /not a JSON object/)
    assert.throws(() => decodeStoredClone(encodeStoredClone(clone({ address: '../../etc#0' }))), /address is not app\/cell#i/)
  })
})
