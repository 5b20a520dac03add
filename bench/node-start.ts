// bench node-start (issue 22: a node starts serving in ≤ 1.5 s): wall time from spawning
// `stem start` (Node 24 with the node's flags, as bin/stem.js runs it) until its control
// API listens (it prints `api: http…`, then answers `GET /v1/status`), for a first start
// (keys generated, data dir created) and a restart of the same data dir. Beside it, in the
// same run, alternating: a bare libp2p node with the mesh's services (createMeshLibp2p,
// bench/support/idle-bare-node.ts) from spawn to listening; and a first start without
// Node's compile cache (NODE_DISABLE_COMPILE_CACHE: every module compiled again, as before
// src/util/compile-cache.ts). p50 of the wall times.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { apiUrlOf, spawnStem, stopAll, tempDataDir } from '../test/support/stem-process.js'
import { NODE_FLAGS } from '../src/util/node-flags.js'
import { readToken } from '../src/node/data-dir.js'
import { percentile } from './support/stats.js'

const TRIALS = 7
const bareNode = join(dirname(fileURLToPath(import.meta.url)), 'support', 'idle-bare-node.js')

/** ms from spawning `stem start` until its control API answers GET /v1/status */
async function stemStart (dataDir: string, env: Record<string, string> = {}): Promise<number> {
  const t = performance.now()
  const node = spawnStem(['start'], dataDir, [], { env })
  await node.ready()
  const status = await fetch(`${await apiUrlOf(dataDir)}/v1/status`, { headers: { authorization: `Bearer ${await readToken(dataDir)}` } })
  const ms = performance.now() - t
  if (status.status !== 200) throw new Error(`GET /v1/status answered ${status.status}`)
  node.signal('SIGTERM')
  await node.exited
  return ms
}

/** ms from spawning a bare libp2p node until it prints its listen address */
async function bareStart (): Promise<number> {
  const t = performance.now()
  const child = spawn(process.execPath, [...NODE_FLAGS, bareNode, randomBytes(32).toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('listen: ')) resolve() })
    child.on('exit', code => { reject(new Error(`the bare libp2p node exited ${String(code)} before listening`)) })
  })
  const ms = performance.now() - t
  child.kill('SIGKILL')
  return ms
}

try {
  const first: number[] = []
  const again: number[] = []
  const bare: number[] = []
  const uncached: number[] = []
  const noCache = { NODE_DISABLE_COMPILE_CACHE: '1' }
  // a warm-up of each (the file cache)
  await stemStart(await tempDataDir())
  await bareStart()
  for (let i = 0; i < TRIALS; i++) {
    const dir = await tempDataDir()
    first.push(await stemStart(dir))
    bare.push(await bareStart())
    again.push(await stemStart(dir))
    uncached.push(await stemStart(await tempDataDir(), noCache))
  }
  const f = percentile(first, 0.5)
  const r = percentile(again, 0.5)
  const b = percentile(bare, 0.5)
  const u = percentile(uncached, 0.5)
  console.log(`bench node-start: p50 ${Math.round(f)} ms from spawning stem start to its API serving (a restart of the same data dir p50 ${Math.round(r)} ms; without the compile cache p50 ${Math.round(u)} ms, ratio ${(f / u).toFixed(2)}), ${TRIALS} trials (a bare libp2p node with the mesh's services p50 ${Math.round(b)} ms to listen, ratio ${(f / b).toFixed(2)})`)
} finally {
  await stopAll()
}
