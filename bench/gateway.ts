import '../src/shim.js'
// bench gateway: requests/s and p99 latency through the HTTP gateway, beside the same
// Fastify answering the same JSON straight from a handler. Load comes from autocannon in
// its own process. The gateway's backend is, for now, an in-process function returning the
// JSON (no mesh hop, no cell): this measures the gateway's own overhead. The lead will point
// it at a real cell later.
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import Fastify from 'fastify'
import { createGateway, type GatewayBackend } from '../src/gateway/index.js'

const run = promisify(execFile)
const autocannonCli = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const connections = 32
const seconds = 5
const rounds = 3
const payload = { count: 7, app: 'shop', ok: true }

interface Load { rps: number, p99: number }

async function load (url: string, duration: number): Promise<Load> {
  const { stdout } = await run(process.execPath, [autocannonCli, '--json', '-c', String(connections), '-d', String(duration), url],
    { maxBuffer: 16 * 1024 * 1024 })
  const result = JSON.parse(stdout) as { requests: { average: number }, latency: { p99: number }, non2xx: number, errors: number }
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return { rps: result.requests.average, p99: result.latency.p99 }
}

function summarise (runs: Load[]): Load {
  const p99s = runs.map(r => r.p99).sort((a, b) => a - b)
  return { rps: runs.reduce((sum, r) => sum + r.rps, 0) / runs.length, p99: p99s[Math.floor(p99s.length / 2)] }
}

const backend: GatewayBackend = {
  replicas: () => 1,
  ask: async () => payload
}
const gateway = createGateway({ backend }, { port: 0, maxInFlight: 4096, maxInFlightPerCell: 4096 })
await gateway.start()
gateway.setRoutes('shop', [{ method: 'GET', path: '/count', cell: 'counter', cellMethod: 'get' }])

const direct = Fastify({ logger: false })
direct.get('/shop/count', async () => payload)
await direct.listen({ host: '127.0.0.1', port: 0 })
const directAddress = direct.server.address()
if (directAddress == null || typeof directAddress === 'string') throw new Error('direct server has no TCP address')

const gatewayUrl = `${gateway.address()}/shop/count`
const directUrl = `http://127.0.0.1:${directAddress.port}/shop/count`
try {
  // warm both up (JIT), then alternate so drift on a shared machine hits both alike
  await load(gatewayUrl, 2)
  await load(directUrl, 2)
  const runs: { gateway: Load[], direct: Load[] } = { gateway: [], direct: [] }
  for (let i = 0; i < rounds; i++) {
    runs.gateway.push(await load(gatewayUrl, seconds))
    runs.direct.push(await load(directUrl, seconds))
  }
  const g = summarise(runs.gateway)
  const d = summarise(runs.direct)
  console.error(`gateway bench: backend is an in-process function (no mesh hop); autocannon -c ${connections}, ${rounds} alternating rounds of ${seconds} s: mean req/s, median p99`)
  console.log(`bench gateway: ${Math.round(g.rps)} req/s p99 ${g.p99.toFixed(1)} ms (direct ${Math.round(d.rps)} req/s p99 ${d.p99.toFixed(1)} ms, ratio ${(g.rps / d.rps).toFixed(2)})`)
} finally {
  await gateway.stop()
  await direct.close()
}
