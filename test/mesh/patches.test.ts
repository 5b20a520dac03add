// scripts/patches/apply.mjs (the postinstall step): applies each patch once, leaves an
// applied one alone, and fails with one line naming the file when upstream changed shape.
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const repo = process.cwd()
const script = join(repo, 'scripts/patches/apply.mjs')
const files = ['node_modules/@libp2p/yamux/dist/src/stream.js', 'node_modules/@libp2p/noise/dist/src/utils.js', 'node_modules/@libp2p/webrtc/dist/src/private-to-private/util.js']

describe('scripts/patches/apply.mjs', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'stem-patches-'))
    for (const f of files) cpSync(join(repo, f), join(root, f))
  })
  afterEach(() => { rmSync(root, { recursive: true, force: true }) })

  it('the installed packages carry the patches; a second run changes nothing', () => {
    const before = files.map(f => readFileSync(join(root, f), 'utf8'))
    const out = execFileSync(process.execPath, [script, '--root', root], { encoding: 'utf8' })
    assert.match(out, /patch yamux-window-update-at-half: already applied/)
    assert.match(out, /patch noise-one-buffer-per-frame: already applied/)
    assert.match(out, /patch webrtc-recipient-waits-for-connected: already applied/)
    assert.deepEqual(files.map(f => readFileSync(join(root, f), 'utf8')), before)
  })

  it('an upstream file that changed shape fails the install with one line naming it', () => {
    const stream = join(root, files[0])
    writeFileSync(stream, readFileSync(stream, 'utf8').replace(/const flags = this\.getSendFlags\(\);/g, 'const flags = this.sendFlags();'))
    const run = spawnSync(process.execPath, [script, '--root', root], { encoding: 'utf8' })
    assert.equal(run.status, 1)
    assert.match(run.stderr, /^scripts\/patches\/apply\.mjs: patch yamux-window-update-at-half: node_modules\/@libp2p\/yamux\/dist\/src\/stream\.js changed shape .*\n$/)
  })

  it('a missing package fails the install with one line naming the file', () => {
    rmSync(join(root, files[1]))
    const run = spawnSync(process.execPath, [script, '--root', root], { encoding: 'utf8' })
    assert.equal(run.status, 1)
    assert.match(run.stderr, /noise-one-buffer-per-frame: node_modules\/@libp2p\/noise\/dist\/src\/utils\.js is missing/)
  })
})
