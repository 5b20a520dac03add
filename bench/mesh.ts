// Mesh benchmarks: N in-process mesh nodes over real TCP on 127.0.0.1.
//   mesh-discovery        every node joins through one bootstrap; time until each node's
//                         capacity view lists all the others (p50 and max over nodes)
//   capacity-convergence  a contribution change on one node; time until all others see it
// Baseline, measured in the same run: a raw libp2p dial + identify between two plain
// nodes (TCP, Noise, Yamux, identify; no pnet, no DHT, no gossip).
import '../src/shim.js'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { createMesh, type Mesh } from '../src/mesh/mesh.js'
import { generateMeshKey } from '../src/mesh/mesh-config.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { setLogLevel } from '../src/util/logger.js'

const N = Number(process.env.BENCH_MESH_NODES ?? 20)
setLogLevel('silent')

const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))] }
const ms = (x: number): string => `${x.toFixed(x < 10 ? 1 : 0)} ms`

async function dialIdentifyBaseline (rounds: number): Promise<number> {
  const make = async (): Promise<Awaited<ReturnType<typeof createLibp2p>>> => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
    services: { identify: identify() }
  })
  const server = await make()
  const times: number[] = []
  for (let i = 0; i < rounds; i++) {
    const client = await make()
    const identified = new Promise<void>(resolve => { client.addEventListener('peer:identify', () => { resolve() }, { once: true }) })
    const t0 = performance.now()
    await client.dial(server.getMultiaddrs()[0])
    await identified
    times.push(performance.now() - t0)
    await client.stop()
  }
  await server.stop()
  return quantile(times, 0.5)
}

async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) return false
    await sleep(5)
  }
  return true
}

const baseline = await dialIdentifyBaseline(20)
const baselineText = `raw libp2p dial+identify ${ms(baseline)}`

const meshConfig = { name: 'bench', key: generateMeshKey() }
const contributed = { cpu: 2, memory: 2 ** 31, cells: 50 }
const make = async (bootstrap: string[]): Promise<Mesh> => createMesh({ privateKey: await createEd25519Key(), mesh: meshConfig, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, contributed })
const first = await make([])
await first.start()
const others: Mesh[] = []
for (let i = 1; i < N; i++) others.push(await make([first.addresses()[0]]))
const all = [first, ...others]

// mesh-discovery
const seenAt = new Map<string, number>()
const t0 = performance.now()
await Promise.all(others.map(async m => { await m.start() }))
await until(() => {
  for (const m of all) if (!seenAt.has(m.peerId) && m.capacity.view.size === N - 1) seenAt.set(m.peerId, performance.now() - t0)
  return seenAt.size === N
}, 60_000)
const discovery = [...seenAt.values()]
if (discovery.length < N) {
  console.log(`bench mesh-discovery: incomplete, ${discovery.length}/${N} nodes saw all others within 60 s (${baselineText}, ratio n/a)`)
} else {
  const p50 = quantile(discovery, 0.5)
  const max = Math.max(...discovery)
  console.log(`bench mesh-discovery: ${N} nodes p50 ${ms(p50)} / max ${ms(max)} (${baselineText}, ratio ${(max / baseline).toFixed(1)})`)
}

// capacity-convergence: several changes on different nodes, each timed until all others see it
await sleep(2000)
const convergence: number[] = []
for (let round = 0; round < 5; round++) {
  const subject = others[round % others.length]
  const cells = 100 + round
  const t1 = performance.now()
  subject.capacity.setContributed({ cells })
  const ok = await until(() => all.every(m => m === subject || m.capacity.view.get(subject.peerId)?.capacity.cells === cells), 30_000)
  if (ok) convergence.push(performance.now() - t1)
  await sleep(300)
}
if (convergence.length === 0) {
  console.log(`bench capacity-convergence: no change reached all ${N - 1} other nodes within 30 s (${baselineText}, ratio n/a)`)
} else {
  const p50 = quantile(convergence, 0.5)
  const max = Math.max(...convergence)
  console.log(`bench capacity-convergence: ${N - 1} nodes p50 ${ms(p50)} / max ${ms(max)} (${baselineText}, ratio ${(max / baseline).toFixed(1)})`)
}

await Promise.all(all.map(async m => { await m.stop() }))
process.exit(0)
