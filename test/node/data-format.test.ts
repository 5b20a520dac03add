// The data dir's format marker: written on first use, a dir from a newer Stem refused with
// one line naming the file before anything in it is read or changed.
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { checkDataFormat, DATA_FORMAT } from '../../src/node/data-dir.js'
import { DiskLogStorage, WalCorruptError } from '../../src/raft/storage/disk-log-storage.js'
import { scanRecords } from '../../src/raft/storage/wal-record.js'
import { EntryType } from '../../src/raft/types.js'

describe('node: the data dir format', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-format-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('is written on first use and accepted again', async () => {
    await checkDataFormat(dir)
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'stem-data.json'), 'utf8')), { format: DATA_FORMAT })
    await checkDataFormat(dir)
  })

  it('refuses a dir from a newer version, naming the file, and leaves it as it was', async () => {
    const path = join(dir, 'stem-data.json')
    await writeFile(path, '{"format":7}\n')
    await assert.rejects(checkDataFormat(dir), (err: Error) => {
      assert.equal(err.message, `${path}: this data dir was written by a newer version of stem (format 7; this one reads format ${DATA_FORMAT}): upgrade stem, or use another --data`)
      return true
    })
    assert.equal(await readFile(path, 'utf8'), '{"format":7}\n')
  })

  it('refuses a damaged marker (truncated, not a number, negative) with one line naming the file', async () => {
    const path = join(dir, 'stem-data.json')
    for (const text of ['{"format":', '{"format":"1"}', '{"format":-1}', '[]', '{"format":1.5}']) {
      await writeFile(path, text)
      await assert.rejects(checkDataFormat(dir), (err: Error) => {
        assert.ok(err.message.startsWith(path) && err.message.includes('corrupt') && !err.message.includes('\n'), err.message)
        return true
      })
    }
  })
})

describe('node: upgrading a data dir of format 1 (raft log records without a header checksum)', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-upgrade-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  /** a group's log as Stem before data format 2 wrote it: [u32 length][u32 crc32(type ‖ payload)][u8 type][payload] */
  const legacyFrame = (type: number, payload: Uint8Array): Buffer => {
    const head = Buffer.alloc(9)
    head.writeUInt32LE(payload.length, 0)
    head.writeUInt32LE(crc32(payload, crc32(Uint8Array.of(type))), 4)
    head[8] = type
    return Buffer.concat([head, payload])
  }

  it('reopens a format-1 group log with every entry, once, and again after the upgrade', async () => {
    const group = join(dir, 'groups', 'app-ledger')
    // write a real log in today's framing, then rewrite each record as format 1 wrote it
    const storage = await DiskLogStorage.open(group)
    const entries = [1, 2, 3].map(i => ({ index: i, term: 1, type: EntryType.Normal, data: new TextEncoder().encode(`add ${i}`) }))
    storage.append(entries)
    storage.setHardState({ term: 1, vote: 'a', commit: 3 })
    await storage.sync()
    await storage.close()
    for (const name of await readdir(group)) {
      const scan = scanRecords(await readFile(join(group, name)))
      await writeFile(join(group, name), Buffer.concat(scan.records.map(r => legacyFrame(r.type, r.payload))))
    }
    await assert.rejects(DiskLogStorage.open(group), WalCorruptError)
    await writeFile(join(dir, 'stem-data.json'), '{"format":1}\n')

    assert.deepEqual(await checkDataFormat(dir), [])
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'stem-data.json'), 'utf8')), { format: DATA_FORMAT })
    for (let round = 0; round < 2; round++) {
      const reopened = await DiskLogStorage.open(group)
      assert.equal(reopened.lastIndex(), 3)
      assert.deepEqual(reopened.entries(1, 4).map(e => new TextDecoder().decode(e.data)), ['add 1', 'add 2', 'add 3'])
      assert.equal(reopened.initialState().hardState.commit, 3)
      await reopened.close()
      // an upgrade cut short before the marker was written runs again without harm
      await rm(join(dir, 'stem-data.json'))
      assert.deepEqual(await checkDataFormat(dir), [])
    }
  })

  it('keeps the original of a format-1 file with a torn tail and says what was left out', async () => {
    const group = join(dir, 'groups', 'app-x')
    await mkdir(group, { recursive: true })
    const segment = join(group, 'wal-0000000000000000.log')
    const good = legacyFrame(1, new TextEncoder().encode('whole'))
    await writeFile(segment, Buffer.concat([good, good.subarray(0, 5)]))
    const lines = await checkDataFormat(dir)
    assert.equal(lines.length, 1)
    assert.ok(lines[0].startsWith(`${segment}: 5 bytes at its end did not upgrade`) && !lines[0].includes('\n'), lines[0])
    assert.deepEqual(await readFile(`${segment}.format1`), Buffer.concat([good, good.subarray(0, 5)]))
    const scan = scanRecords(await readFile(segment))
    assert.equal(scan.damage, undefined)
    assert.deepEqual(scan.records.map(r => new TextDecoder().decode(r.payload)), ['whole'])
  })
})

describe('node: upgrading a data dir of format 2 (state files without a reply window)', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-upgrade2-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('marks it format 3 without reading its raft logs as format 1 (a torn tail stays for the log to judge)', async () => {
    const group = join(dir, 'groups', 'app-y')
    const storage = await DiskLogStorage.open(group)
    storage.append([{ index: 1, term: 1, type: EntryType.Normal, data: new TextEncoder().encode('add 1') }])
    await storage.sync()
    await storage.close()
    const [name] = (await readdir(group)).filter(n => n.endsWith('.log'))
    const torn = Buffer.concat([await readFile(join(group, name)), Buffer.from([1, 2, 3])])
    await writeFile(join(group, name), torn)
    await writeFile(join(dir, 'stem-data.json'), '{"format":2}\n')
    assert.deepEqual(await checkDataFormat(dir), [])
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'stem-data.json'), 'utf8')), { format: DATA_FORMAT })
    assert.deepEqual(await readFile(join(group, name)), torn)
    assert.deepEqual((await readdir(group)).filter(n => n.endsWith('.format1')), [])
  })
})
