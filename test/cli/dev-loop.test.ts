// The dev loop against a real node: `stem new` scaffolds an app that publishes, answers
// its route and passes its own SDK test (the --ts one type-checks with tsc --noEmit);
// `stem dev` republishes on save with the state kept, streams the logs, reports a syntax
// error with its location and recovers on the next good save, and exits on Ctrl-C.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gatewayOf } from '../../scripts/support/stem-mesh.js'
import { createDebouncedRunner } from '../../src/cli/watch.js'
import { printLogsIfFailed, repoRoot, runToEnd, spawnStem, stem, stopAll, type StemProcess, tempDataDir } from '../support/stem-process.js'
import { waitFor } from '../support/wait.js'

const stemBin = join(repoRoot, 'bin', 'stem.js')
const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')

/** `stem …` run in `cwd` */
async function stemIn (cwd: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runToEnd(process.execPath, ['--no-node-snapshot', stemBin, ...args], { cwd })
}

async function get (url: string): Promise<{ status: number, json: { message?: string, greeted?: number, error?: string } }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, json: await res.json() as { message?: string, greeted?: number } }
}

describe('cli: stem new and stem dev', function () {
  this.timeout(240_000)
  afterEach(printLogsIfFailed)
  let node: StemProcess
  let gateway: string
  let work: string

  before(async () => {
    node = await spawnStem(['start'], await tempDataDir(), ['--gateway', '127.0.0.1:0']).ready()
    gateway = gatewayOf(node)
    work = await mkdtemp(join(tmpdir(), 'stem-new-'))
  })
  after(async () => {
    await stopAll()
    await rm(work, { recursive: true, force: true })
  })

  it('stem new refuses an invalid or existing name with one line and writes nothing', async () => {
    for (const name of ['My_App', 'x-', '1abc', 'a/b', 'x'.repeat(64)]) {
      const r = await stemIn(work, ['new', name])
      assert.equal(r.code, 2, `${name}: ${r.stderr}`)
      assert.match(r.stderr, /^stem: invalid app name: .* is not a valid name \(lowercase letters, digits and '-'.*\)\n$/, name)
    }
    assert.deepEqual(await readdir(work), [])
    assert.equal((await stemIn(work, ['new', 'taken'])).code, 0)
    const before = await readFile(join(work, 'taken', 'app.yaml'), 'utf8')
    await writeFile(join(work, 'taken', 'mine.txt'), 'keep me')
    const again = await stemIn(work, ['new', 'taken', '--ts'])
    assert.equal(again.code, 1)
    assert.equal(again.stderr, `stem: ${join(work, 'taken')} already exists; choose another name or remove it\n`)
    assert.equal(await readFile(join(work, 'taken', 'app.yaml'), 'utf8'), before)
    assert.equal(await readFile(join(work, 'taken', 'mine.txt'), 'utf8'), 'keep me')
    // no temp dir left beside it
    assert.deepEqual((await readdir(work)).sort(), ['taken'])
  })

  it('stem new NAME: the app publishes, answers its route and passes its own SDK test', async () => {
    const made = await stemIn(work, ['new', 'hello-app'])
    assert.equal(made.code, 0, made.stderr)
    assert.match(made.stdout, /stem dev hello-app\/app\.yaml/)
    const dir = join(work, 'hello-app')
    const published = await stem(['publish', join(dir, 'app.yaml'), '--data', node.dataDir])
    assert.equal(published.code, 0, published.stderr)
    assert.deepEqual(await get(`${gateway}/hello-app/hello/Ada`), { status: 200, json: { message: 'Hello, Ada!', greeted: 1 } })
    assert.equal((await get(`${gateway}/hello-app/hello/%20`)).status, 400)
    const test = await runToEnd(process.execPath, ['--test', 'test/hello-app.test.js'], { cwd: dir, env: { ...process.env, STEM_DATA: node.dataDir } })
    assert.equal(test.code, 0, test.stdout + test.stderr)
    assert.match(test.stdout, /pass 2\n/)
    assert.deepEqual((await get(`${gateway}/hello-app/stats`)).json, { greeted: 2 })
  })

  it('stem new NAME --ts: the cell type-checks against stem/cell (and a misuse does not), publishes and passes its test', async () => {
    const made = await stemIn(work, ['new', 'typed', '--ts'])
    assert.equal(made.code, 0, made.stderr)
    const dir = join(work, 'typed')
    const checked = await runToEnd(process.execPath, [tsc, '--noEmit', '-p', dir])
    assert.equal(checked.code, 0, checked.stdout + checked.stderr)
    // the check can fail: the cell misusing stem is an error
    const cell = join(dir, 'typed.ts')
    const good = await readFile(cell, 'utf8')
    await writeFile(cell, good.replace("stem.log(`hello ${params.name}`)", "stem.log(`hello ${params.name}`); stem.nope(); const n: number = params.name"))
    const bad = await runToEnd(process.execPath, [tsc, '--noEmit', '-p', dir])
    assert.equal(bad.code, 2, bad.stdout)
    assert.match(bad.stdout, /typed\.ts.*Property 'nope' does not exist on type 'Stem'/)
    assert.match(bad.stdout, /typed\.ts.*Type 'string' is not assignable to type 'number'/)
    await writeFile(cell, good)

    const published = await stem(['publish', join(dir, 'app.yaml'), '--data', node.dataDir])
    assert.equal(published.code, 0, published.stderr)
    assert.deepEqual(await get(`${gateway}/typed/hello/Grace`), { status: 200, json: { message: 'Hello, Grace!', greeted: 1 } })
    const test = await runToEnd(process.execPath, ['--test', 'test/typed.test.ts'], { cwd: dir, env: { ...process.env, STEM_DATA: node.dataDir } })
    assert.equal(test.code, 0, test.stdout + test.stderr)
    assert.match(test.stdout, /pass 2\n/)
  })

  it('stem dev: a save republishes with the state kept, logs stream, a syntax error is shown with its location and the next save recovers; Ctrl-C exits 0', async () => {
    assert.equal((await stemIn(work, ['new', 'devapp'])).code, 0)
    const dir = join(work, 'devapp')
    const cell = join(dir, 'devapp.js')
    const original = await readFile(cell, 'utf8')
    const child = spawn(process.execPath, ['--no-node-snapshot', stemBin, 'dev', join(dir, 'app.yaml'), '--data', node.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const exited = new Promise<number | null>(resolve => { child.on('exit', code => { resolve(code) }) })
    try {
      const hello = async (name: string): Promise<{ message?: string, greeted?: number }> => (await get(`${gateway}/devapp/hello/${name}`)).json
      await waitFor(async () => (await hello('Ada')).message === 'Hello, Ada!', { timeout: 60_000, what: `the first publish (${out}${err})` })
      const { greeted } = await hello('Ada')
      assert.ok(greeted !== undefined && greeted >= 2)
      // the cell's stem.log lines come out of stem dev
      await waitFor(() => /devapp\/devapp#0 rev \w+ log: hello Ada/.test(out), { what: `the log line in stem dev's output:\n${out}` })

      // a save: the new code answers, the count goes on
      await writeFile(cell, original.replace('Hello, ', 'Howdy, '))
      const howdy = await waitFor(async () => { const r = await hello('Bo'); return r.message === 'Howdy, Bo!' && r }, { timeout: 60_000, what: `the republished code (${out}${err})` })
      assert.ok(howdy.greeted !== undefined && howdy.greeted > greeted, `state kept: ${JSON.stringify(howdy)} after ${greeted}`)

      // a syntax error: esbuild's file:line:column and the source line; the old code keeps serving
      await writeFile(cell, original.replace('Hello, ', 'Howdy, ').replace('this.greeted += 1', 'this.greeted += ('))
      await waitFor(() => /still watching/.test(err), { timeout: 60_000, what: `the syntax error reported (${err})` })
      assert.match(err, /stem: cannot bundle devapp\/devapp: .*devapp\.js:\d+:\d+: Expected "\)" but found "return"\n/)
      assert.match(err, /\n +\d+ \| +return \{ message: `Howdy, .*\n +\^\n/)
      assert.equal((await hello('Cy')).message, 'Howdy, Cy!')
      assert.equal(child.exitCode, null, 'stem dev keeps running')

      // the next good save recovers, state still kept
      await writeFile(cell, original.replace('Hello, ', 'Hiya, '))
      const hiya = await waitFor(async () => { const r = await hello('Di'); return r.message === 'Hiya, Di!' && r }, { timeout: 60_000, what: `the recovered code (${out}${err})` })
      assert.ok(hiya.greeted !== undefined && howdy.greeted !== undefined && hiya.greeted > howdy.greeted + 1, JSON.stringify(hiya))

      child.kill('SIGINT')
      assert.equal(await exited, 0, err)
      assert.match(err, /stem dev: stopping/)
    } finally {
      child.kill('SIGKILL')
      await writeFile(cell, original)
    }
  })

  it('stem dev refuses a bad manifest and a missing node with one line', async () => {
    const dir = await mkdtemp(join(work, 'bad-'))
    await writeFile(join(dir, 'app.yaml'), 'app: Bad_Name\ncells: {}\n')
    const bad = await stem(['dev', join(dir, 'app.yaml'), '--data', node.dataDir])
    assert.equal(bad.code, 2)
    assert.equal(bad.stderr.split('\n').length, 2, bad.stderr)
    assert.match(bad.stderr, /app\.yaml.*app/)
    assert.equal((await stemIn(work, ['new', 'nonode'])).code, 0)
    const none = await stem(['dev', join(work, 'nonode', 'app.yaml'), '--data', await tempDataDir()])
    assert.equal(none.code, 1)
    assert.match(none.stderr, /^stem: no running node found for data dir .*\n$/)
  })
})

describe('cli: the debounced runner of stem dev', function () {
  it('runs once for a burst of changes, never twice at once, and once more for changes during a run', async () => {
    const runs: number[] = []
    let generation = 1
    let running = 0
    let release: (() => void) | undefined
    const runner = createDebouncedRunner(async () => {
      running++
      assert.equal(running, 1, 'two runs at once')
      runs.push(generation)
      if (generation === 2) await new Promise<void>(resolve => { release = resolve })
      running--
    }, 20)
    for (let i = 0; i < 10; i++) runner.changed()
    await waitFor(() => runs.length === 1, { what: 'the burst run' })
    generation = 2
    runner.changed()
    await waitFor(() => release !== undefined, { what: 'the second run to start' })
    // changes while it runs: one more run after it, not one each
    generation = 3
    for (let i = 0; i < 5; i++) runner.changed()
    await waitFor(() => runs.length === 2, { what: 'no run beside the running one' })
    release?.()
    await waitFor(() => runs.length === 3, { what: 'the run after the run' })
    generation = 4
    runner.changed()
    await waitFor(() => runs.length === 4, { what: 'a later change' })
    runner.stop()
    assert.deepEqual(runs, [1, 2, 3, 4])
  })
})
