// The data dir's format marker: written on first use, a dir from a newer Stem refused with
// one line naming the file before anything in it is read or changed.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkDataFormat, DATA_FORMAT } from '../../src/node/data-dir.js'

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
