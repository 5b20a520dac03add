// Idle benchmark (issue 22): what a quiet mesh costs. 3 real `stem` processes with one app
// published (the counter example, never called) and, in the same run, 3 bare libp2p
// processes with the same services (bench/support/idle-bare-node.ts) meshed the same way.
// Over the window (BENCH_IDLE_SECONDS, default 60) each process's CPU comes from
// /proc/<pid>/stat (utime + stime before and after) and its RSS from /proc/<pid>/status at
// the end; cell hosts are the nodes' child processes.
//   idle   mean CPU % of one core and RSS per node, per cell host, per bare libp2p node
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import { repoRoot, stemJson, stopAll } from '../scripts/support/stem-process.js'
import { startMesh } from '../scripts/support/stem-mesh.js'
import { waitFor } from '../scripts/support/wait.js'
import { childPids, cpuSeconds, rssBytes } from './support/proc-usage.js'

const WINDOW_S = Number(process.env.BENCH_IDLE_SECONDS ?? 60)
if (!(WINDOW_S > 0)) throw new Error(`BENCH_IDLE_SECONDS must be a positive number of seconds, got ${process.env.BENCH_IDLE_SECONDS}`)
/** after the mesh forms and the app is placed: start-up work (DHT self-queries, elections) ends */
const SETTLE_MS = 5_000
const bareEntry = join(dirname(fileURLToPath(import.meta.url)), 'support', 'idle-bare-node.js')

interface Usage { cpuPercent: number, rss: number }

/** CPU % of one core over the window and RSS at its end, for each pid */
async function measure (pids: number[], seconds: number): Promise<Usage[]> {
  const before = pids.map(cpuSeconds)
  const start = performance.now()
  await delay(seconds * 1000)
  const elapsed = (performance.now() - start) / 1000
  return pids.map((pid, i) => ({ cpuPercent: (cpuSeconds(pid) - before[i]) / elapsed * 100, rss: rssBytes(pid) }))
}

async function startBare (keyHex: string, dial?: string): Promise<{ child: ChildProcess, listen: string }> {
  const child = spawn(process.execPath, ['--no-node-snapshot', bareEntry, keyHex, ...(dial !== undefined ? [dial] : [])], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  const listen = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`bare libp2p node exited ${child.exitCode}`)
    return /^listen: (\S+)$/m.exec(out)?.[1]
  }, { timeout: 30_000, what: 'a bare libp2p node to start' })
  return { child, listen }
}

function mean (usages: Usage[]): Usage {
  return {
    cpuPercent: usages.reduce((a, u) => a + u.cpuPercent, 0) / usages.length,
    rss: usages.reduce((a, u) => a + u.rss, 0) / usages.length
  }
}

const fmt = (u: Usage): string => `${u.cpuPercent.toFixed(1)}%, ${Math.round(u.rss / 1048576)} MiB`

async function main (): Promise<void> {
  const bare: ChildProcess[] = []
  try {
    const nodes = await startMesh(3)
    await stemJson(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', nodes[0].dataDir])
    const nodePids = nodes.map(n => n.process.child.pid ?? 0)
    await waitFor(() => nodePids.some(p => childPids(p).length > 0), { timeout: 60_000, what: 'the app\'s cell host to start' })
    const keyHex = randomBytes(32).toString('hex')
    const first = await startBare(keyHex)
    bare.push(first.child)
    for (let i = 1; i < 3; i++) bare.push((await startBare(keyHex, first.listen)).child)
    await delay(SETTLE_MS)
    const hostPids = nodePids.flatMap(childPids)
    const barePids = bare.map(c => c.pid ?? 0)
    const usage = await measure([...nodePids, ...hostPids, ...barePids], WINDOW_S)
    const node = mean(usage.slice(0, nodePids.length))
    const host = mean(usage.slice(nodePids.length, nodePids.length + hostPids.length))
    const base = mean(usage.slice(nodePids.length + hostPids.length))
    const ratio = base.cpuPercent > 0 ? (node.cpuPercent / base.cpuPercent).toFixed(1) : 'n/a'
    const perNode = usage.slice(0, nodePids.length).map(u => u.cpuPercent.toFixed(1)).join('/')
    console.log(`bench idle: node ${node.cpuPercent.toFixed(1)}% of a core, ${Math.round(node.rss / 1048576)} MiB RSS (each ${perNode}%); cell host ${fmt(host)} (${hostPids.length} host(s)) over ${WINDOW_S} s, 3 nodes, one idle app (bare libp2p node ${fmt(base)}, ratio ${ratio})`)
  } finally {
    for (const c of bare) c.kill('SIGKILL')
    await stopAll()
  }
}

await main()
