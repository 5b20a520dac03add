// `stem demo` as a user runs it: a child process; every URL and command its banner prints
// must work as printed; the printed kill -9 shows a failover; Ctrl-C leaves no process.
// `stem demo --smoke` exits 0 after its unattended tour.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from '../support/wait.js'
import { DemoProcess, groupAlive, parseBanner, processesMentioning, runCurl, runPrinted, stemBin, type Run } from '../support/demo-process.js'

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
    const lines = p.stdout.trim().split('\n')
    assert.equal(lines.length, 5, `header + this node + the 2 other nodes + the footnote:\n${p.stdout}`)
    assert.match(lines[1], /^\* /, 'this node first, marked')
    assert.equal(lines[4], '* this node')
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

  it('Ctrl-C returns soon after the nodes\' hand-over: nodes leave, cell hosts are stopped by their node, not killed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(dir)
    const demo = new DemoProcess(['--data', dir])
    running.push(demo)
    const banner = parseBanner(await demo.banner())
    const interrupted = Date.now()
    demo.child.kill('SIGINT')
    // a generous deadline: the nodes used to linger on libp2p's timers for seconds after their hand-over
    await waitFor(() => demo.exitCode !== undefined, { timeout: 30_000, what: 'the demo to exit after Ctrl-C', interval: 20 })
    const exited = Date.now()
    assert.equal(demo.exitCode, 0, demo.stderr)
    const logs = await Promise.all(banner.pids.map(async (_, i) => await readFile(join(dir, `node-${i + 1}`, 'stem.log'), 'utf8')))
    const handOvers = logs.map(text => /^(\S+) INFO\s+node: hand-over took/m.exec(text)?.[1])
    assert.ok(handOvers.every(t => t !== undefined), 'every node logged its hand-over')
    const lastHandOver = Math.max(...handOvers.map(t => Date.parse(t as string)))
    process.stdout.write(`      Ctrl-C: hand-over done ${lastHandOver - interrupted} ms after SIGINT, demo exited ${exited - lastHandOver} ms after the hand-over\n`)
    assert.ok(exited - lastHandOver < 3000, `the demo exited ${exited - lastHandOver} ms after the last hand-over (allowed 3000)`)
    // the node stops its cell hosts itself: a SIGTERM to the host under the hand-over reads as a crash
    for (const text of logs) assert.doesNotMatch(text, /cell host of app \S+ \(pid \d+\) was killed by SIGTERM/)
    assert.deepEqual(await processesMentioning(dir), [])
  })

  it('a SIGKILLed demo, after its banner or during start-up, leaves no node behind: each node sees its stdin close and leaves', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(dir)
    const demo = new DemoProcess(['--nodes', '2', '--data', dir])
    running.push(demo)
    const banner = parseBanner(await demo.banner())
    assert.equal(banner.pids.length, 2)
    for (const pid of banner.pids) assert.ok(groupAlive(pid), `node pid ${pid} runs`)
    demo.child.kill('SIGKILL')
    await demo.exited
    // each node's process group (the node and its cell hosts) ends by itself
    await waitFor(() => banner.pids.every(pid => !groupAlive(pid)), { timeout: 60_000, what: 'the nodes of the killed demo to exit' })
    assert.deepEqual(await processesMentioning(dir), [])
    // they left gracefully: a node removes its api.json as it stops
    for (const n of [1, 2]) assert.equal(existsSync(join(dir, `node-${n}`, 'api.json')), false, `node ${n} stopped gracefully`)

    // killed while its nodes start: they stop once started
    const early = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(early)
    const starting = new DemoProcess(['--nodes', '2', '--data', early])
    running.push(starting)
    await waitFor(async () => (await processesMentioning(join(early, 'node-'))).length >= 1, { timeout: 60_000, what: 'a node to be started' })
    starting.child.kill('SIGKILL')
    await starting.exited
    await waitFor(async () => (await processesMentioning(early)).length === 0, { timeout: 60_000, what: 'the nodes of the demo killed during start-up to exit' })
  })

  it('a demo node whose parent is gone (its output pipe broken before stdin ends) leaves gracefully instead of dying of EPIPE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-demo-test-'))
    dirs.push(dir)
    const child = spawn(process.execPath, ['--no-node-snapshot', stemBin, 'start', '--data', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--exit-with-stdin'], {
      stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, STEM_API: '', STEM_DATA: '' }
    })
    const exited = new Promise<number | null>(resolve => { child.on('exit', code => { resolve(code) }) })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    try {
      await waitFor(() => /^api: http/m.test(stdout) && existsSync(join(dir, 'api.json')), { timeout: 60_000, what: 'the node to start' })
      // the parent died: nobody reads the node's output any more, but its stdin has not ended yet
      child.stdout.destroy()
      child.stderr.destroy()
      // the node's next line of output (here: the one a SIGTERM prints) meets a broken pipe
      child.kill('SIGTERM')
      assert.equal(await exited, 0, 'the node exits normally')
      assert.equal(existsSync(join(dir, 'api.json')), false, 'the node stopped gracefully')
    } finally {
      child.kill('SIGKILL')
    }
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
