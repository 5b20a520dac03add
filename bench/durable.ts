// Durability benchmark (issue 14): what `durability: disk` costs beside `memory`. Two
// in-process nodes (TCP + Noise + Yamux on 127.0.0.1, cells in real cell host processes):
// a primary running a counter with one clone; each node persists what it holds (the
// primary's states in <data>/cells, the clone's in <data>/clones, atomic write + fsync).
//   disk    a reply leaves once the state is fsynced on the primary and on the clone;
//           concurrent messages share one fsync (group commit)
//   memory  a reply leaves once the clone holds the state in memory; disks follow behind
// Rounds alternate between the two levels (the announcement's durability), with 1 client
// asking one after another and 64 clients asking at once.
//   durable-ask      1 client: disk vs memory
//   durable-ask-64   64 concurrent clients: disk vs memory (goal: ratio ≥ 0.5)
import { signBundle } from '../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../src/cells/limits.js'
import { createEd25519Key, encodePublicKey, peerIdOf } from '../src/wire/keys.js'
import { setLogLevel } from '../src/util/logger.js'
import { AppTable } from '../src/topology/app-table.js'
import type { CloneService, Durability } from '../src/topology/clones.js'
import { meanLatency, timeSequential } from './support/stats.js'
import type { Latency } from './support/stats.js'
import { ADDRESS, COUNTER, createBenchNode, MESH, stopBenchNodes } from './support/clone-nodes.js'

setLogLevel('silent')
const ROUNDS = 4
const ASKS = 100
const CLIENTS = 64
const CONCURRENT_ASKS = 1000

const table = new AppTable()
let gate: CloneService | undefined

let version = 1n
let ownerId = ''
function announce (primary: string, clone: string, durability: Durability): void {
  table.update({
    app: 'bench', owner: ownerId, leader: primary, term: 1n, version: version++, members: [primary],
    instances: [{ address: ADDRESS, node: primary, epoch: 1n, state: 'transformed', clones: [clone], clonesReady: [] }],
    cells: [{ name: 'counter', replicas: 1, timeout: 500, durability }], routes: [], reverted: false
  })
}

/** `total` asks from `clients` clients at once; rate in asks/s */
async function concurrent (ask: () => Promise<unknown>, clients: number, total: number): Promise<number> {
  let left = total
  const start = performance.now()
  await Promise.all(Array.from({ length: clients }, async () => {
    while (left-- > 0) await ask()
  }))
  return total / ((performance.now() - start) / 1000)
}

const line = (name: string, disk: number, memory: number, unit: string): string =>
  `bench ${name}: ${Math.round(disk)} ${unit} with durability disk (memory ${Math.round(memory)} ${unit}, ratio ${(disk / memory).toFixed(2)})`

async function main (): Promise<void> {
  const node = async (): ReturnType<typeof createBenchNode> => await createBenchNode({ mesh: MESH, table, gate: () => gate, clones: true, primaries: true })
  const primary = await node()
  const clone = await node()
  const nodes = [primary, clone]
  try {
    await primary.libp2p.dial(clone.libp2p.getMultiaddrs()[0])
    gate = primary.clones
    const owner = await createEd25519Key()
    const bundle = await signBundle({ app: 'bench', cell: 'counter', entry: 'counter.js', code: COUNTER, limits: { ...DEFAULT_LIMITS, mailbox: 10_000 } }, owner)
    const ownerKey = encodePublicKey(owner.publicKey)
    ownerId = peerIdOf(owner.publicKey)
    await primary.bundles.publish(bundle)
    announce(primary.id, clone.id, 'disk')
    await primary.runtime.transform(ADDRESS, bundle, { owner: ownerKey, limits: bundle.limits })
    await primary.clones.hold(clone.id, ADDRESS, bundle.hash, ownerKey, bundle.limits)
    const ask = async (): Promise<unknown> => await primary.runtime.ask(ADDRESS, 'increment', [1])
    const sequential: Record<Durability, Latency[]> = { disk: [], memory: [] }
    const parallel: Record<Durability, number[]> = { disk: [], memory: [] }
    for (const d of ['disk', 'memory'] as const) { announce(primary.id, clone.id, d); await timeSequential(ask, 30) }
    for (let r = 0; r < ROUNDS; r++) {
      for (const d of ['disk', 'memory'] as const) {
        announce(primary.id, clone.id, d)
        sequential[d].push(await timeSequential(ask, ASKS))
        parallel[d].push(await concurrent(ask, CLIENTS, CONCURRENT_ASKS))
      }
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    const disk = meanLatency(sequential.disk)
    const memory = meanLatency(sequential.memory)
    console.log(`${line('durable-ask', disk.perSecond, memory.perSecond, 'asks/s')}, p50 ${disk.p50.toFixed(3)} ms vs ${memory.p50.toFixed(3)} ms`)
    console.log(line('durable-ask-64', mean(parallel.disk), mean(parallel.memory), 'asks/s'))
  } finally {
    await stopBenchNodes(nodes)
  }
}

await main()
