// bench gateway: what a user of the HTTP gateway gets. A 3-node mesh on loopback: the
// gateway node runs in this process (a StemNode contributing no cell slots, so the cell is
// always one mesh hop away) and two `stem` processes host the examples/counter app
// (primary + warm clone, each in its own cell host). Load: autocannon in its own process,
// GET /counter/count on the gateway (→ route → messaging ask → remote node → cell host).
// Baseline, in the same run and the same process as the gateway: the same ask to the same
// cell (`counter/counter#0` get, the gateway's argument) through cell messaging directly,
// with as many asks in flight as autocannon has connections — the mesh without HTTP.
// Rounds alternate the two after a warm-up of both (the machine's load drifts).
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createStemNode } from '../src/node/stem-node.js'
import { setLogLevel } from '../src/util/logger.js'
import { waitFor } from '../test/support/wait.js'
import { repoRoot, spawnStem, stemJson, stopAll, tempDataDir } from '../test/support/stem-process.js'
import { percentile } from './support/stats.js'

const run = promisify(execFile)
const autocannonCli = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const connections = 32
const seconds = 5
const rounds = 3
const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')
/** what a GET route passes its cell: one `{ params, query, body }` argument */
const routeArg = { params: {}, query: {}, body: null }

interface Load { rps: number, p50: number, p99: number }

async function httpLoad (url: string, duration: number): Promise<Load> {
  const { stdout } = await run(process.execPath, [autocannonCli, '--json', '-c', String(connections), '-d', String(duration), url],
    { maxBuffer: 16 * 1024 * 1024 })
  const result = JSON.parse(stdout) as { requests: { average: number }, latency: { p50: number, p99: number }, non2xx: number, errors: number }
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 }
}

/** `connections` ask loops for `duration` seconds; every answer checked. */
async function askLoad (ask: () => Promise<unknown>, duration: number): Promise<Load> {
  const latencies: number[] = []
  const start = performance.now()
  const end = start + duration * 1000
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const t = performance.now()
      const answer = await ask() as { count?: unknown }
      latencies.push(performance.now() - t)
      if (typeof answer?.count !== 'number') throw new Error(`unexpected answer ${JSON.stringify(answer)}`)
    }
  }))
  const elapsed = (performance.now() - start) / 1000
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

/** mean req/s, median p50 and p99 of the rounds */
function summarise (runs: Load[]): Load {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  return { rps: runs.reduce((sum, r) => sum + r.rps, 0) / runs.length, p50: median(runs.map(r => r.p50)), p99: median(runs.map(r => r.p99)) }
}

setLogLevel('silent')
const gatewayNode = createStemNode({
  dataDir: await tempDataDir(),
  listen: ['/ip4/127.0.0.1/tcp/0'],
  api: '127.0.0.1:0',
  gateway: '127.0.0.1:0',
  cells: 0,
  mesh: 'bench'
})
try {
  await gatewayNode.start()
  const invite = gatewayNode.mesh().invite()
  await Promise.all([0, 1].map(async () => await spawnStem(['join', invite], await tempDataDir()).ready()))
  await waitFor(() => gatewayNode.mesh().capacity.view.list().length === 2, { timeout: 60_000, what: 'the gateway node to see both cell nodes' })
  const published = await stemJson<{ cells: Array<{ address: string, node: string, clones: string[] }> }>(['publish', manifest, '--data', gatewayNode.dataDir])
  const placed = published.cells[0]
  if (placed.node === gatewayNode.peerId()) throw new Error('the counter was placed on the gateway node, which contributes no cell slots')

  const url = `${gatewayNode.gatewayUrl()}/counter/count`
  await waitFor(async () => (await fetch(url)).status === 200, { timeout: 30_000, what: `${url} to answer` })
  const messaging = gatewayNode.apps().messaging
  const direct = async (): Promise<unknown> => await messaging.ask('counter/counter#0', 'get', [routeArg])

  // warm both up (JIT, connections), then alternate
  await httpLoad(url, 2)
  await askLoad(direct, 2)
  const runs: { gateway: Load[], direct: Load[] } = { gateway: [], direct: [] }
  for (let i = 0; i < rounds; i++) {
    runs.gateway.push(await httpLoad(url, seconds))
    runs.direct.push(await askLoad(direct, seconds))
  }
  const g = summarise(runs.gateway)
  const d = summarise(runs.direct)
  console.error(`gateway bench: GET ${url} → ${placed.address} on another node (3-node mesh; gateway node in-process, cell nodes are stem processes); ${connections} in flight, ${rounds} alternating rounds of ${seconds} s: mean req/s, median p50/p99`)
  const ms = (n: number): string => `${n.toFixed(1)} ms`
  console.log(`bench gateway: ${Math.round(g.rps)} req/s p50 ${ms(g.p50)} p99 ${ms(g.p99)} (same ask through cell messaging ${Math.round(d.rps)} asks/s p50 ${ms(d.p50)} p99 ${ms(d.p99)}, ratio ${(g.rps / d.rps).toFixed(2)})`)
} finally {
  await gatewayNode.stop()
  await stopAll()
}
