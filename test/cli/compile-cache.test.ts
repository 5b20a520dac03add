// Node's compile cache (src/util/compile-cache.ts): `stem` fills it beside the install, and
// a command still runs where the cache cannot be written.
import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import { COMPILE_CACHE_DIR } from '../../src/util/compile-cache.js'
import { stem } from '../support/stem-process.js'

async function entries (dir: string): Promise<string[]> {
  return await readdir(dir, { recursive: true }).catch(() => [])
}

describe('cli: the compile cache', function () {
  this.timeout(60_000)

  it('is filled by a stem command, beside the install', async () => {
    await rm(COMPILE_CACHE_DIR, { recursive: true, force: true })
    const r = await stem(['--help'])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(COMPILE_CACHE_DIR.endsWith('/node_modules/.cache/stem-compile'), COMPILE_CACHE_DIR)
    assert.ok((await entries(COMPILE_CACHE_DIR)).length > 1, `nothing cached in ${COMPILE_CACHE_DIR}`)
  })

  it('is not needed: with the cache disabled the command runs the same', async () => {
    const r = await stem(['--help'], { NODE_DISABLE_COMPILE_CACHE: '1' })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^Usage: stem/)
  })
})
