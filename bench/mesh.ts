// Mesh benchmarks: N mesh nodes over real TCP on 127.0.0.1. The parent process hosts the
// bootstrap node; the other N-1 run in a few worker processes (this same file, forked),
// like real nodes each having their own process, rather than sharing one event loop.
//   mesh-discovery        every node joins through the bootstrap; time from the join
//                         until each node's capacity view lists all the others (p50, max)
//   capacity-convergence  a contribution change on one node; time until all others see it
// Baseline, measured in the same run: a raw libp2p dial + identify between two plain
// nodes (TCP, Noise, Yamux, identify; no pnet, no DHT, no gossip).
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { createMesh, type Mesh } from '../src/mesh/mesh.js'
import { generateMeshKey, type MeshConfig } from '../src/mesh/mesh-config.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { setLogLevel } from '../src/util/logger.js'

const N = Number(process.env.BENCH_MESH_NODES ?? 20)
const WORKERS = Number(process.env.BENCH_MESH_WORKERS ?? 4)
const contributed = { cpu: 2, memory: 2 ** 31, cells: 50 }
setLogLevel('silent')

type ToWorker =
  | { cmd: 'create', key: string }
  | { cmd: 'join', bootstrap: string, total: number }
  | { cmd: 'contribute', peer: string, cells: number }
  | { cmd: 'watch', peer: string, cells: number }
  | { cmd: 'stop' }
type FromWorker =
  | { cmd: 'created' }
  | { cmd: 'seen', peer: string, at: number }
  | { cmd: 'converged', at: number }
  | { cmd: 'stopped' }

const now = (): number => performance.timeOrigin + performance.now()
const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
const quantile = (xs: number[], q: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))] }
const ms = (x: number): string => `${x.toFixed(x < 10 ? 1 : 0)} ms`

async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) return false
    await sleep(5)
  }
  return true
}

const meshOf = (key: string): MeshConfig => ({ name: 'bench', key: new Uint8Array(Buffer.from(key, 'hex')) })
const createNode = async (mesh: MeshConfig, bootstrap: string[]): Promise<Mesh> =>
  createMesh({ privateKey: await createEd25519Key(), mesh, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, contributed })

/** worker: hosts some nodes, reports when each sees the whole mesh and when changes arrive */
async function worker (): Promise<void> {
  const send = (m: FromWorker): void => { process.send?.(m) }
  let nodes: Mesh[] = []
  let key = ''
  process.on('message', (m: ToWorker) => {
    void (async () => {
      if (m.cmd === 'create') {
        key = m.key
        send({ cmd: 'created' })
      } else if (m.cmd === 'join') {
        const count = Number(process.env.BENCH_MESH_COUNT)
        nodes = await Promise.all(Array.from({ length: count }, async () => createNode(meshOf(key), [m.bootstrap])))
        await Promise.all(nodes.map(async n => { await n.start() }))
        const pending = new Set(nodes)
        while (pending.size > 0) {
          for (const n of pending) {
            if (n.capacity.view.size === m.total - 1) { pending.delete(n); send({ cmd: 'seen', peer: n.peerId, at: now() }) }
          }
          await sleep(5)
        }
      } else if (m.cmd === 'contribute') {
        nodes.find(n => n.peerId === m.peer)?.capacity.setContributed({ cells: m.cells })
      } else if (m.cmd === 'watch') {
        while (!nodes.every(n => n.peerId === m.peer || n.capacity.view.get(m.peer)?.capacity.cells === m.cells)) await sleep(2)
        send({ cmd: 'converged', at: now() })
      } else if (m.cmd === 'stop') {
        await Promise.all(nodes.map(async n => { await n.stop() }))
        send({ cmd: 'stopped' })
        process.exit(0)
      }
    })()
  })
}

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

async function parent (): Promise<void> {
  const baseline = await dialIdentifyBaseline(20)
  const baselineText = `raw libp2p dial+identify ${ms(baseline)}`
  const key = Buffer.from(generateMeshKey()).toString('hex')
  const first = await createNode(meshOf(key), [])
  await first.start()

  const sizes = Array.from({ length: WORKERS }, (_, i) => Math.floor((N - 1) / WORKERS) + (i < (N - 1) % WORKERS ? 1 : 0)).filter(s => s > 0)
  const workers = sizes.map(count => fork(fileURLToPath(import.meta.url), [], { execArgv: ['--no-node-snapshot'], env: { ...process.env, BENCH_MESH_WORKER: '1', BENCH_MESH_COUNT: String(count) } }))
  const inbox: FromWorker[] = []
  for (const w of workers) w.on('message', (m: FromWorker) => inbox.push(m))
  const tell = (m: ToWorker): void => { for (const w of workers) w.send(m) }
  tell({ cmd: 'create', key })
  await until(() => inbox.filter(m => m.cmd === 'created').length === workers.length, 30_000)

  // mesh-discovery
  const seen = new Map<string, number>()
  const t0 = now()
  tell({ cmd: 'join', bootstrap: first.addresses()[0], total: N })
  const complete = await until(() => {
    for (const m of inbox.splice(0)) if (m.cmd === 'seen') seen.set(m.peer, m.at - t0)
    if (!seen.has(first.peerId) && first.capacity.view.size === N - 1) seen.set(first.peerId, now() - t0)
    return seen.size === N
  }, 90_000)
  const discovery = [...seen.values()]
  if (!complete) {
    console.log(`bench mesh-discovery: incomplete, ${discovery.length}/${N} nodes saw all others within 90 s (${baselineText}, ratio n/a)`)
  } else {
    const max = Math.max(...discovery)
    console.log(`bench mesh-discovery: ${N} nodes p50 ${ms(quantile(discovery, 0.5))} / max ${ms(max)} (${baselineText}, ratio ${(max / baseline).toFixed(1)})`)
  }

  // capacity-convergence: changes on worker-hosted nodes, each timed until every other node has it
  await sleep(2000)
  const subjects = first.capacity.view.list().map(p => p.id)
  const convergence: number[] = []
  for (let round = 0; complete && round < 5; round++) {
    const subject = subjects[round % subjects.length]
    const cells = 100 + round
    inbox.length = 0
    tell({ cmd: 'watch', peer: subject, cells })
    const t1 = now()
    tell({ cmd: 'contribute', peer: subject, cells })
    let done = 0
    const ok = await until(() => {
      done += inbox.splice(0).filter(m => m.cmd === 'converged').length
      return done === workers.length && first.capacity.view.get(subject)?.capacity.cells === cells
    }, 30_000)
    if (ok) convergence.push(now() - t1)
    await sleep(500)
  }
  if (convergence.length === 0) {
    console.log(`bench capacity-convergence: no change reached all ${N - 1} other nodes within 30 s (${baselineText}, ratio n/a)`)
  } else {
    const max = Math.max(...convergence)
    console.log(`bench capacity-convergence: ${N - 1} nodes p50 ${ms(quantile(convergence, 0.5))} / max ${ms(max)} (${baselineText}, ratio ${(max / baseline).toFixed(1)})`)
  }

  tell({ cmd: 'stop' })
  await until(() => inbox.filter(m => m.cmd === 'stopped').length === workers.length, 20_000)
  await first.stop()
  for (const w of workers) w.kill('SIGKILL')
  process.exit(0)
}

if (process.env.BENCH_MESH_WORKER === '1') await worker()
else await parent()
