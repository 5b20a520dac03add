// The simulated disk of `sim:raft --storage disk` (SimFs) and the disk WAL on it: what a
// power cut keeps, torn tails, crashes at any write, bit flips the WAL must refuse.
import assert from 'node:assert/strict'
import { SimCrashError, SimFs } from '../../src/raft/sim/sim-fs.js'
import { createRand } from '../../src/raft/core/rand.js'
import { DiskLogStorage, WalCorruptError } from '../../src/raft/storage/disk-log-storage.js'
import { SECTOR_BYTES } from '../../src/raft/storage/wal-record.js'
import { mkdirDurable } from '../../src/util/atomic-file.js'
import { EntryType } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'

const DIR = '/disk/raft'
const bytes = (n: number, value: number): Uint8Array => new Uint8Array(n).fill(value)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

function ent (index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(`e${index}`) }
}

/** a PRNG that draws 0 (a crash, when crash faults are on) at its `at`-th call only */
function crashAtDraw (at: number): () => number {
  let calls = 0
  return () => ++calls === at ? 0 : 0.99
}

async function newFs (rand: () => number): Promise<SimFs> {
  const fs = new SimFs(rand)
  await mkdirDurable(DIR, fs)
  return fs
}

describe('sim fs: a simulated disk with storage faults', () => {
  it('keeps what was fsynced across a power cut and drops the rest', async () => {
    const fs = await newFs(createRand(1))
    const h = await fs.open(`${DIR}/f`, 'wx')
    await h.write(bytes(100, 1), 0, 100, 0)
    await h.datasync()
    await fs.fsyncDir(DIR)
    await h.write(bytes(50, 2), 0, 50, 100)
    assert.equal((await fs.readFile(`${DIR}/f`)).length, 150)
    fs.powerCut()
    assert.deepEqual(await fs.readFile(`${DIR}/f`), bytes(100, 1))
    await assert.rejects(h.write(bytes(1, 3), 0, 1, 100), /before a power cut/)
  })

  it('loses a file whose directory entry was never fsynced, even with its data fsynced', async () => {
    const fs = await newFs(createRand(1))
    const h = await fs.open(`${DIR}/new`, 'wx')
    await h.write(bytes(10, 1), 0, 10, 0)
    await h.sync()
    fs.powerCut()
    assert.deepEqual(await fs.readdir(DIR), [])
    await assert.rejects(fs.readFile(`${DIR}/new`), { code: 'ENOENT' })
  })

  it('loses a directory whose entry was never fsynced into its parent, with the fsynced files in it', async () => {
    const fs = new SimFs(createRand(1))
    assert.equal(await fs.mkdir(`${DIR}/a/b`), '/disk')
    await fs.fsyncDir('/disk/raft') // makes a durable, but /disk's own entry in / is not
    const h = await fs.open(`${DIR}/a/b/f`, 'wx')
    await h.write(bytes(10, 1), 0, 10, 0)
    await h.sync()
    await fs.fsyncDir(`${DIR}/a/b`)
    await fs.fsyncDir(`${DIR}/a`)
    fs.powerCut()
    await assert.rejects(fs.readdir('/disk'), { code: 'ENOENT' })
    await assert.rejects(fs.readFile(`${DIR}/a/b/f`), { code: 'ENOENT' })
  })

  it('keeps every directory mkdirDurable creates, and the fsynced files in them, across a power cut', async () => {
    const fs = await newFs(createRand(1))
    await mkdirDurable(`${DIR}/a/b/c`, fs)
    const h = await fs.open(`${DIR}/a/b/c/f`, 'wx')
    await h.write(bytes(10, 1), 0, 10, 0)
    await h.sync()
    await fs.fsyncDir(`${DIR}/a/b/c`)
    fs.powerCut()
    assert.deepEqual(await fs.readFile(`${DIR}/a/b/c/f`), bytes(10, 1))
  })

  it('replaces a file atomically: a crash at any of its writes leaves the old or the new content', async () => {
    const seen = new Set<string>()
    for (let at = 1; at <= 6; at++) {
      const crashing = await newFs(crashAtDraw(at))
      await crashing.writeFileAtomic(`${DIR}/snapshot`, new TextEncoder().encode('old')) // no faults: no draws
      crashing.faults = { crash: 0.5, torn: 0 }
      const done = await crashing.writeFileAtomic(`${DIR}/snapshot`, new TextEncoder().encode('new')).then(() => true, (err: Error) => {
        assert.ok(err instanceof SimCrashError, err.message)
        return false
      })
      if (!done) {
        assert.equal(crashing.down, true)
        await assert.rejects(crashing.readFile(`${DIR}/snapshot`), SimCrashError)
      }
      crashing.powerCut()
      const content = text(await crashing.readFile(`${DIR}/snapshot`))
      assert.ok(content === 'old' || content === 'new', content)
      assert.deepEqual(await crashing.readdir(DIR), ['snapshot'], 'no temp file survives')
      seen.add(`${at}:${done ? 'done' : 'crashed'}:${content}`)
    }
    // crashes at open, write, fsync and rename keep the old file; a crash just after the
    // directory's fsync keeps the new one; with no crash drawn, the write completes
    assert.deepEqual([...seen], ['1:crashed:old', '2:crashed:old', '3:crashed:old', '4:crashed:old', '5:crashed:new', '6:done:new'])
  })

  it('leaves a torn tail of unsynced bytes: cut short, or whole sectors of zeros, never touching fsynced bytes', async () => {
    const shapes = new Set<string>()
    for (let seed = 1; seed <= 200; seed++) {
      const fs = await newFs(createRand(seed))
      fs.faults = { crash: 0, torn: 1 }
      const h = await fs.open(`${DIR}/f`, 'wx')
      await h.write(bytes(700, 0xaa), 0, 700, 0)
      await h.datasync()
      await fs.fsyncDir(DIR)
      await h.write(bytes(3000, 0xbb), 0, 3000, 700)
      fs.powerCut()
      const after = await fs.readFile(`${DIR}/f`)
      assert.ok(after.length > 700 && after.length <= 3700, `${after.length} bytes`)
      assert.deepEqual(after.subarray(0, 700), bytes(700, 0xaa))
      const zeroAt = after.indexOf(0)
      if (zeroAt < 0) {
        assert.deepEqual(after.subarray(700), bytes(after.length - 700, 0xbb))
        shapes.add('short')
      } else {
        assert.equal(zeroAt % SECTOR_BYTES, 0, `zeros start at ${zeroAt}, inside a sector`)
        assert.ok(zeroAt >= 1024, `zeros start at ${zeroAt}, in the sector holding fsynced bytes`)
        assert.deepEqual(after.subarray(700, zeroAt), bytes(zeroAt - 700, 0xbb))
        assert.deepEqual(after.subarray(zeroAt), bytes(after.length - zeroAt, 0))
        shapes.add('zeros')
      }
    }
    assert.deepEqual([...shapes].sort(), ['short', 'zeros'])
  })

  it('powers off at a write drawn from its PRNG: that call and every later one throw until the power comes back', async () => {
    const fs = await newFs(createRand(1))
    const h = await fs.open(`${DIR}/f`, 'wx')
    await fs.fsyncDir(DIR)
    fs.faults = { crash: 1, torn: 0 }
    await assert.rejects(h.write(bytes(10, 1), 0, 10, 0), SimCrashError)
    assert.equal(fs.down, true)
    await assert.rejects(fs.readdir(DIR), SimCrashError)
    fs.faults = { crash: 0, torn: 0 }
    fs.powerCut()
    assert.equal(fs.down, false)
    assert.deepEqual(await fs.readFile(`${DIR}/f`), new Uint8Array(0))
  })
})

describe('sim fs: the disk WAL under storage faults', () => {
  it('loses nothing it synced across crashes at any write and torn tails (400 crashes)', async () => {
    let crashes = 0
    for (let seed = 1; crashes < 400; seed++) {
      const rand = createRand(seed)
      const fs = new SimFs(rand) // the WAL creates its directory itself

      fs.faults = { crash: 0.05, torn: 1 }
      const open = async (): Promise<DiskLogStorage> => await DiskLogStorage.open(DIR, { fs, segmentBytes: 512 })
      let wal: DiskLogStorage | undefined
      let synced = 0 // entries 1…synced and commit `synced` were acknowledged by sync()
      for (let i = 1; i <= 60;) {
        try {
          wal ??= await open()
          if (wal.lastIndex() < i - 1) throw new Error(`seed ${seed}: lost entries: last index ${wal.lastIndex()}, ${i - 1} synced`)
          wal.append([ent(i, 1)])
          wal.setHardState({ term: 1, vote: 'a', commit: i })
          await wal.sync()
          synced = i
          if (i % 10 === 0) {
            await wal.createSnapshot(i, { voters: ['a'], learners: [] }, new TextEncoder().encode(`s${i}`))
            wal.compact(i - 2)
            await wal.sync()
          }
          i++
        } catch (err) {
          if (!(err instanceof SimCrashError) && !fs.down) throw err
          crashes++
          fs.powerCut()
          wal = undefined
        }
      }
      fs.faults = { crash: 0, torn: 0 }
      wal ??= await open()
      assert.ok(wal.lastIndex() >= synced, `seed ${seed}: last index ${wal.lastIndex()} < ${synced}`)
      assert.ok(wal.initialState().hardState.commit >= synced, `seed ${seed}: commit ${wal.initialState().hardState.commit} < ${synced}`)
      for (let i = wal.firstIndex(); i <= synced; i++) assert.equal(text(wal.entries(i, i + 1)[0].data), `e${i}`)
    }
  })

  it('refuses a flip of any bit in its fsynced files, and opens again once the bit is back', async () => {
    const fs = await newFs(createRand(7))
    const wal = await DiskLogStorage.open(DIR, { fs, segmentBytes: 512 })
    for (let i = 1; i <= 30; i++) {
      wal.append([ent(i, 1)])
      wal.setHardState({ term: 1, vote: 'a', commit: i })
      if (i === 20) await wal.createSnapshot(20, { voters: ['a'], learners: [] }, new TextEncoder().encode('s20'))
      await wal.sync()
    }
    fs.powerCut() // the crash: what was fsynced remains
    const files = await fs.readdir(DIR)
    assert.ok(files.includes('snapshot') && files.filter(f => f.startsWith('wal-')).length >= 2, files.join(' '))
    let flips = 0
    for (const name of files) {
      const size = (await fs.readFile(`${DIR}/${name}`)).length
      for (let offset = 0; offset < size; offset++) {
        const flip = { path: `${DIR}/${name}`, offset, bit: offset % 8 }
        fs.applyFlip(flip)
        await assert.rejects(DiskLogStorage.open(DIR, { fs, segmentBytes: 512 }), WalCorruptError, `bit ${flip.bit} of byte ${offset} in ${name}`)
        fs.applyFlip(flip)
        flips++
      }
    }
    assert.ok(flips > 1000, `${flips} flips`)
    const reopened = await DiskLogStorage.open(DIR, { fs, segmentBytes: 512 })
    assert.equal(reopened.lastIndex(), 30)
    assert.equal(text(reopened.snapshot().data), 's20')
  })
})
