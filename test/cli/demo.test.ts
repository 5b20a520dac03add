// `stem demo` as a user runs it: a child process; every URL and command its banner prints
// must work as printed; the printed kill -9 shows a failover; Ctrl-C leaves no process.
// `stem demo --smoke` exits 0 after its unattended tour.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../support/wait.js'
import { repoRoot } from '../support/stem-process.js'

const stemBin = join(repoRoot, 'bin', 'stem.js')

interface Run { code: number | null, stdout: string, stderr: string }

export class DemoProcess {
  stdout = ''
  stderr = ''
  exitCode: number | null | undefined
  readonly exited: Promise<number | null>
  readonly child: ChildProcess

  constructor (args: string[]) {
    this.child = spawn(process.execPath, ['--no-node-snapshot', stemBin, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STEM_API: '', STEM_DATA: '' } })
    this.child.stdout?.on('data', (d: Buffer) => { this.stdout += d.toString() })
    this.child.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.exited = new Promise(resolve => { this.child.on('exit', (code, signal) => { this.exitCode = code ?? (signal != null ? -1 : null); resolve(this.exitCode) }) })
  }

  async banner (): Promise<string> {
    return await waitFor(() => {
      if (this.exitCode !== undefined) throw new Error(`stem demo exited ${this.exitCode}: ${this.stderr.trim()}`)
      return this.stdout.includes('Ctrl-C stops everything.') && this.stdout
    }, { timeout: 150_000, what: 'the demo banner' })
  }
}

/** runs a shell line as printed (curl); without curl, the same request with fetch */
async function runCurl (line: string): Promise<string> {
  if (existsSync('/usr/bin/curl') || existsSync('/bin/curl')) {
    return await new Promise((resolve, reject) => {
      execFile('sh', ['-c', line], { timeout: 30_000 }, (err, stdout) => { if (err != null) reject(err); else resolve(stdout) })
    })
  }
  const url = /(http:\/\/\S+)/.exec(line)?.[1] as string
  const body = /-d '([^']*)'/.exec(line)?.[1]
  const res = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return await res.text()
}

/** runs a printed `npx stem …` line; `npx` itself only when asked (it is slow), else bin/stem.js */
async function runPrinted (line: string, viaNpx: boolean): Promise<Run> {
  const args = line.replace(/^npx stem /, '').split(/\s+/)
  const [file, argv] = viaNpx ? ['npx', ['stem', ...args]] : [process.execPath, ['--no-node-snapshot', stemBin, ...args]]
  return await new Promise(resolve => {
    execFile(file, argv, { cwd: repoRoot, timeout: 90_000, env: { ...process.env, STEM_API: '', STEM_DATA: '' } }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}

function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** pids of live processes whose command line mentions `text` */
async function processesMentioning (text: string): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(text)) found.push(Number(entry))
  }
  return found
}

export function parseBanner (text: string): { dashboard: string, curl: string[], commands: string[], kill?: number, pids: number[], dataDir: string } {
  const dashboard = /^Dashboard\s+(\S+)/m.exec(text)?.[1]
  assert.ok(dashboard !== undefined, 'the banner prints the dashboard URL')
  const dataDir = /--data (\S+)\/node-\d+$/m.exec(text)?.[1]
  assert.ok(dataDir !== undefined, 'the banner prints commands with --data')
  return {
    dashboard,
    dataDir,
    curl: [...text.matchAll(/^ {2}(curl .+)$/gm)].map(m => m[1]),
    commands: [...text.matchAll(/^ {2}(npx stem .+)$/gm)].map(m => m[1]),
    kill: ((k) => k === undefined ? undefined : Number(k))(/^ {2}kill -9 (\d+)$/m.exec(text)?.[1]),
    pids: [...text.matchAll(/^ {2}node \d+ {2}pid (\d+)/gm)].map(m => Number(m[1]))
  }
}

const running: DemoProcess[] = []
const dirs: string[] = []

async function cleanup (): Promise<void> {
  for (const d of running.splice(0)) { if (d.exitCode === undefined) d.child.kill('SIGKILL'); await d.exited }
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
}

describe('stem demo', function () {
  this.timeout(240_000)
  afterEach(cleanup)

  it('prints a banner whose URLs and commands work as printed; its kill -9 shows a failover; Ctrl-C leaves no process', async () => {
    const demo = new DemoProcess([])
    running.push(demo)
    const banner = parseBanner(await demo.banner())
    assert.equal(banner.pids.length, 3, 'three nodes')
    assert.equal(banner.curl.length, 2)
    assert.deepEqual(banner.commands.map(c => c.split(' ').slice(0, 4).join(' ')), ['npx stem peers --data', 'npx stem apps --data', 'npx stem cells counter', 'npx stem call counter/counter'])

    // the dashboard page and its state: 3 nodes, the counter app
    const page = await fetch(banner.dashboard)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /html/)
    const state = await waitFor(async () => {
      const s = await (await fetch(`${banner.dashboard}/state`)).json() as { nodes: unknown[], apps: Array<{ app: string }> }
      return s.nodes.length === 3 && s.apps.some(a => a.app === 'counter') && s
    }, { timeout: 30_000, what: 'the dashboard to show 3 nodes and the counter' })
    assert.ok(state)

    // the curl lines: read, then add 5
    const before = JSON.parse(await runCurl(banner.curl[0])) as { count: number }
    assert.equal(typeof before.count, 'number')
    assert.deepEqual(JSON.parse(await runCurl(banner.curl[1])), { count: before.count + 5 })

    // the CLI lines, the first one literally through npx
    const [peers, apps, cells, call] = banner.commands
    const p = await runPrinted(peers, true)
    assert.equal(p.code, 0, p.stderr)
    assert.equal(p.stdout.trim().split('\n').length, 3, `header + the 2 other nodes:\n${p.stdout}`)
    const a = await runPrinted(apps, false)
    assert.equal(a.code, 0, a.stderr)
    assert.match(a.stdout, /^counter\s/m)
    const c = await runPrinted(cells, false)
    assert.equal(c.code, 0, c.stderr)
    assert.match(c.stdout, /^counter\/counter#0\s+\S+\s+transformed\s+\S+/m)
    const r = await runPrinted(call, false)
    assert.equal(r.code, 0, r.stderr)
    let expected = before.count + 10
    assert.deepEqual(JSON.parse(r.stdout), { count: expected })

    // the printed kill -9: the demo reports the move, the printed curl still counts from where it was
    assert.ok(banner.kill !== undefined && banner.pids.includes(banner.kill), 'the banner names a node pid to kill')
    process.kill(banner.kill, 'SIGKILL')
    await waitFor(() => /now runs on node \d/.test(demo.stdout), { timeout: 120_000, what: 'the demo to report the failover' })
    const afterKill = await waitFor(async () => JSON.parse(await runCurl(banner.curl[0])) as { count: number }, { timeout: 30_000, what: 'the counter to answer after the failover' })
    assert.deepEqual(afterKill, { count: expected })
    expected += 5
    assert.deepEqual(JSON.parse(await runCurl(banner.curl[1])), { count: expected })
    await waitFor(() => !groupAlive(banner.kill as number), { timeout: 30_000, what: 'the killed node\'s cell host to exit by itself' })

    // Ctrl-C: everything stops, nothing is left, the temp dir is gone
    demo.child.kill('SIGINT')
    assert.equal(await demo.exited, 0, demo.stderr)
    for (const pid of banner.pids) assert.equal(groupAlive(pid), false, `process group of node pid ${pid} is gone`)
    assert.deepEqual(await processesMentioning(banner.dataDir), [])
    assert.equal(existsSync(banner.dataDir), false, 'the temp data dir is removed')
  })

  it('--smoke runs the tour unattended and exits 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(dir)
    const demo = new DemoProcess(['--smoke', '--data', dir])
    running.push(demo)
    const code = await demo.exited
    assert.equal(code, 0, `${demo.stdout}\n${demo.stderr}`)
    assert.match(demo.stdout.trim().split('\n').pop() ?? '', /^smoke: ok \(3 nodes, \d+ s\)$/)
    assert.match(demo.stdout, /failover: the counter runs on node \d with all \d+ acknowledged increments/)
    assert.deepEqual(await processesMentioning(dir), [])
    assert.ok(existsSync(join(dir, 'node-1', 'stem.log')), '--data keeps the data dirs and logs')
  })

  it('SIGTERM during start-up stops the nodes started so far; bad --nodes is a one-line error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(dir)
    const demo = new DemoProcess(['--data', dir])
    running.push(demo)
    await waitFor(async () => (await processesMentioning(join(dir, 'node-'))).length >= 2, { timeout: 60_000, what: 'two nodes to be started' })
    demo.child.kill('SIGTERM')
    assert.notEqual(await demo.exited, 0)
    assert.match(demo.stderr, /SIGTERM: stopped during start-up/)
    assert.deepEqual(await processesMentioning(dir), [])

    const bad = await new Promise<Run>(resolve => {
      execFile(process.execPath, ['--no-node-snapshot', stemBin, 'demo', '--nodes', '0'], (err, stdout, stderr) => { resolve({ code: (err as { code?: number } | null)?.code ?? 0, stdout, stderr }) })
    })
    assert.equal(bad.code, 2)
    assert.equal(bad.stderr.trim().split('\n').length, 1)
    assert.match(bad.stderr, /--nodes: expected a whole number from 1 to 9, got "0"/)
  })
})
