// App benchmarks on a mesh of real `stem` processes on loopback (issue #6):
//
//   publish        `stem publish` of a 10-cell app (1 replica + 1 warm clone each) until
//                  every instance runs, beside `stem publish` of a 1-cell app on the same mesh.
//   cell-failover  kill -9 of the node running the counter's primary → the first answer of
//                  the instance on its new node (asks sent every 20 ms through a live node),
//                  beside the failure detection alone: the first `peer … is down` verdict a
//                  live node logs (its log lines carry their time; one machine, one clock).
//   stall-failover the same from SIGSTOP of the primary's host (its connections stay open:
//                  only unanswered probes tell), beside cell-failover's p50 in the same run;
//                  the stalled node gets SIGCONT after the first answer and must rejoin.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createHttpCaller } from '../src/messaging/call-client.js'
import { readToken } from '../src/node/data-dir.js'
import type { AppCellsListing } from '../src/topology/app-table.js'
import { apiUrlOf, repoRoot, spawnStem, stem, stopAll, tempDataDir, type StemProcess } from '../scripts/support/stem-process.js'
import { waitFor } from '../scripts/support/wait.js'
import { percentile } from './support/stats.js'
import { apiOf, cellsOf } from './support/cells-of.js'

const NODES = 5
const PUBLISH_TRIALS = 3
const FAILOVER_TRIALS = 10

async function cli (args: string[]): Promise<string> {
  const r = await stem(args)
  if (r.code !== 0) throw new Error(`stem ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
  return r.stdout
}

const nodes: StemProcess[] = []
const running = (): StemProcess[] => nodes.filter(n => n.running)

async function startMesh (): Promise<void> {
  nodes.push(await spawnStem(['start'], await tempDataDir()).ready())
  const invite = (await cli(['invite', '--data', nodes[0].dataDir])).trim()
  nodes.push(...await Promise.all(Array.from({ length: NODES - 1 }, async () => spawnStem(['join', invite], await tempDataDir()).ready())))
  for (const n of nodes) {
    await waitFor(async () => (await (await apiOf(n)).get<{ peers: unknown[] }>('/v1/peers')).peers.length === NODES - 1, { timeout: 90_000, what: 'every node to see every other' })
  }
}

// ---- publish

async function writeApp (dir: string, app: string, cells: number): Promise<string> {
  const code = await readFile(join(repoRoot, 'examples', 'counter', 'counter.js'), 'utf8')
  await writeFile(join(dir, 'counter.js'), code)
  const spec = Array.from({ length: cells }, (_, i) => `  c${i}:\n    code: ./counter.js\n    replicas: 1\n    clones: 1\n    memory: 16MiB\n    timeout: 100ms\n    mailbox: 100`).join('\n')
  const file = join(dir, `${app}.yaml`)
  await writeFile(file, `app: ${app}\ncells:\n${spec}\n`)
  return file
}

/** ms from the start of `stem publish` until it returns with every instance running, each with a clone */
async function timePublish (file: string, app: string, cells: number): Promise<number> {
  const started = performance.now()
  const out = JSON.parse(await cli(['publish', file, '--data', nodes[0].dataDir, '--json'])) as { cells: AppCellsListing['cells'] }
  const took = performance.now() - started
  if (out.cells.length !== cells || !out.cells.every(c => c.state === 'transformed' && c.clones.length === 1 && c.clones[0] !== c.node)) {
    throw new Error(`${app} was not fully placed: ${JSON.stringify(out.cells)}`)
  }
  await cli(['revert', app, '--data', nodes[0].dataDir])
  return took
}

async function benchPublish (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-app-'))
  try {
    const ten: number[] = []
    const one: number[] = []
    for (let t = 0; t < PUBLISH_TRIALS; t++) {
      one.push(await timePublish(await writeApp(dir, `one${t}`, 1), `one${t}`, 1))
      ten.push(await timePublish(await writeApp(dir, `ten${t}`, 10), `ten${t}`, 10))
    }
    const a = percentile(ten, 0.5)
    const b = percentile(one, 0.5)
    console.log(`bench publish: ${a.toFixed(0)} ms for a 10-cell app (1 clone each) to run on ${NODES} nodes, median of ${PUBLISH_TRIALS} (a 1-cell app ${b.toFixed(0)} ms, ratio ${(a / b).toFixed(2)})`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---- cell failover

const LOG_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /

/**
 * time of the first failure verdict on `id` any of `watchers` logged after `offset` (their
 * stderr length at the fault): the failure detector's `peer <id> is down`, or the capacity
 * view's `peer lost <id> (expired)` when its adverts stopped
 */
function detectedAt (watchers: Array<{ node: StemProcess, offset: number }>, id: string): number | undefined {
  const times = watchers.flatMap(({ node, offset }) => node.stderr.slice(offset).split('\n')
    .filter(line => line.includes(`peer ${id} is down`) || line.includes(`peer lost ${id} (expired)`))
    .map(line => Date.parse(LOG_TIME.exec(line)?.[1] ?? '')))
    .filter(t => Number.isFinite(t))
  return times.length > 0 ? Math.min(...times) : undefined
}

/**
 * the counter's listing once every live node lists it running on a live node with a live
 * clone, all on the same node: a node woken from the last trial's stall lists itself as the
 * primary until it learns of its replacement, and a trial that stopped it would time nothing
 */
async function settled (): Promise<AppCellsListing['cells'][number] | undefined> {
  const live = running()
  const ids = new Set(live.map(n => n.peerId()))
  let agreed: AppCellsListing['cells'][number] | undefined
  for (const n of live) {
    const cell = (await cellsOf(n, 'counter'))[0]
    if (cell?.state !== 'transformed' || !ids.has(cell.node) || !cell.clones.some(c => ids.has(c) && c !== cell.node)) return undefined
    if (agreed !== undefined && agreed.node !== cell.node) return undefined
    agreed = cell
  }
  return agreed
}

type Fault = 'kill' | 'stall'

/** per trial: ms from the fault to the first answer, and to the first failure verdict */
async function failoverTrials (fault: Fault): Promise<{ answers: number[], detections: number[] }> {
  const answers: number[] = []
  const detections: number[] = []
  for (let t = 0; t < FAILOVER_TRIALS; t++) {
    const cell = await waitFor(settled, { timeout: 90_000, what: 'the counter and a clone to run on live nodes' })
    const victim = nodes.find(n => n.peerId() === cell.node) as StemProcess
    const asker = running().find(n => n !== victim) as StemProcess
    const count = (await waitFor(async () => await createHttpCaller({ url: await apiUrlOf(asker.dataDir), token: await readToken(asker.dataDir) }).ask('counter/counter', 'increment', [1]) as { count: number }, { timeout: 30_000, what: 'an increment before the fault' })).count
    const watchers = running().filter(n => n !== victim).map(node => ({ node, offset: node.stderr.length }))
    const struck = Date.now()
    if (fault === 'kill') {
      victim.signal('SIGKILL')
      await victim.exited
    } else {
      victim.signal('SIGSTOP')
    }
    const answered = await firstAnswer(asker, count)
    answers.push(answered - struck)
    const detected = await waitFor(() => detectedAt(watchers, victim.peerId()), { timeout: 30_000, what: 'a failure verdict in the logs' })
    detections.push(detected - struck)
    process.stderr.write(`${fault === 'kill' ? 'cell' : 'stall'}-failover trial ${t + 1}: first answer ${answered - struck} ms, failure verdict ${detected - struck} ms\n`)
    // BENCH_LOGS=1: what the live nodes logged during the failover, to see where the time goes
    if (process.env.BENCH_LOGS === '1') for (const w of watchers) process.stderr.write(w.node.stderr.slice(w.offset).split('\n').filter(l => l !== '').map(l => `  ${w.node.peerId().slice(-6)} ${l}\n`).join(''))
    process.stderr.write(`  ${fault === 'kill' ? 'killed' : 'stopped'} at ${new Date(struck).toISOString()} (${victim.peerId().slice(-6)}), answered at ${new Date(answered).toISOString()}\n`)
    if (fault === 'kill') {
      // the victim comes back from its data dir; the next trial waits for the app to settle
      nodes[nodes.indexOf(victim)] = await spawnStem(['start'], victim.dataDir).ready()
    } else {
      // the stalled node wakes up believing it still holds the primary; it must step down
      victim.signal('SIGCONT')
    }
  }
  return { answers, detections }
}

async function benchFailover (): Promise<void> {
  await cli(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', nodes[0].dataDir, '--json'])
  const kill = await failoverTrials('kill')
  const p50 = percentile(kill.answers, 0.5)
  const d50 = percentile(kill.detections, 0.5)
  console.log(`bench cell-failover: p50 ${p50} ms, p99 ${percentile(kill.answers, 0.99)} ms from kill -9 of the primary's host to the first answer, ${FAILOVER_TRIALS} trials (failure detection alone p50 ${d50} ms, ratio ${(p50 / d50).toFixed(2)})`)
  if (!wanted('stall-failover')) return
  const stall = await failoverTrials('stall')
  const s50 = percentile(stall.answers, 0.5)
  console.log(`bench stall-failover: p50 ${s50} ms, p99 ${percentile(stall.answers, 0.99)} ms from SIGSTOP of the primary's host to the first answer, ${FAILOVER_TRIALS} trials, failure verdict p50 ${percentile(stall.detections, 0.5)} ms (kill -9 p50 ${p50} ms in the same run, ratio ${(s50 / p50).toFixed(2)})`)
}

/** asks `get` (each with 1 s to answer) every 20 ms through `via` until the instance answers; checks the acknowledged count survived */
async function firstAnswer (via: StemProcess, expected: number): Promise<number> {
  const caller = createHttpCaller({ url: await apiUrlOf(via.dataDir), token: await readToken(via.dataDir) })
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      const { count } = await caller.ask('counter/counter', 'get', [], { deadline: Date.now() + 1000 }) as { count: number }
      if (count !== expected) throw new Error(`the counter answered ${count} after failover, ${expected} was acknowledged`)
      return Date.now()
    } catch (err) {
      if (/after failover/.test((err as Error).message)) throw err
      if (Date.now() > deadline) throw new Error(`no answer within 60 s of the kill: ${(err as Error).message}`)
      await delay(20)
    }
  }
}

// `node dist/bench/app.js [publish] [cell-failover] [stall-failover]`: only those (default all;
// stall-failover runs after cell-failover, whose p50 is its baseline)
const only = process.argv.slice(2)
const wanted = (name: string): boolean => only.length === 0 || only.includes(name)
try {
  await startMesh()
  if (wanted('publish')) await benchPublish()
  if (wanted('cell-failover') || wanted('stall-failover')) await benchFailover()
} catch (err) {
  // what the nodes said is the only clue to a failed run
  for (const n of nodes) process.stderr.write(`--- ${n.dataDir}\n${n.stderr.split('\n').filter(l => /cannot|fail|error/i.test(l)).slice(-15).join('\n')}\n`)
  throw err
} finally {
  // a node left stopped by a failed stall trial must run to be stopped
  for (const n of running()) n.signal('SIGCONT')
  await stopAll()
}
