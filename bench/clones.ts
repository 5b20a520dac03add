// Clone benchmarks: what persisting held clones on disk costs the hot path. Three
// in-process nodes (TCP + Noise + Yamux on 127.0.0.1, cells in real cell host processes):
// a primary running a counter whose answers wait for a clone to hold each state (the
// reply gate; `durability: memory`), a clone node that writes what it holds to disk (write-behind, fsync), and
// one that keeps it in memory only. Rounds alternate between the two clones.
//   clone-gated-ask        sequential increments, clone persisting vs memory-only clone
//   clone-fsync-per-state  one atomic write + fsync of the same state file on the same disk
//                          (what "held" = "on the clone's disk" would add to every answer)
//                          vs the gated ask itself
import { join } from 'node:path'
import { signBundle } from '../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../src/cells/limits.js'
import { createEd25519Key, encodePublicKey } from '../src/wire/keys.js'
import { setLogLevel } from '../src/util/logger.js'
import { writeFileAtomic } from '../src/util/atomic-file.js'
import { AppTable } from '../src/topology/app-table.js'
import type { CloneService } from '../src/topology/clones.js'
import { meanLatency, percentile, timeSequential } from './support/stats.js'
import type { Latency } from './support/stats.js'
import { ADDRESS, COUNTER, createBenchNode, MESH, stopBenchNodes } from './support/clone-nodes.js'

setLogLevel('silent')
const ROUNDS = 10
const ASKS = 100

const table = new AppTable()
let gate: CloneService | undefined

function announce (primary: string, clone: string, version: bigint): void {
  table.update({
    app: 'bench', owner: 'o', leader: primary, term: 1n, version, members: [primary],
    instances: [{ address: ADDRESS, node: primary, epoch: 1n, state: 'transformed', clones: [clone], clonesReady: [] }],
    cells: [{ name: 'counter', replicas: 1, timeout: 500, durability: 'memory' }], routes: [], reverted: false
  })
}

async function main (): Promise<void> {
  const node = async (persist: boolean): ReturnType<typeof createBenchNode> => await createBenchNode({ mesh: MESH, table, gate: () => gate, clones: persist, runtimeData: true })
  const primary = await node(false)
  const onDisk = await node(true)
  const inMemory = await node(false)
  const nodes = [primary, onDisk, inMemory]
  try {
    for (const n of [onDisk, inMemory]) await primary.libp2p.dial(n.libp2p.getMultiaddrs()[0])
    gate = primary.clones
    const owner = await createEd25519Key()
    const bundle = await signBundle({ app: 'bench', cell: 'counter', entry: 'counter.js', code: COUNTER, limits: { ...DEFAULT_LIMITS, mailbox: 10_000 } }, owner)
    const ownerKey = encodePublicKey(owner.publicKey)
    await primary.bundles.publish(bundle)
    await primary.runtime.transform(ADDRESS, bundle, { owner: ownerKey, limits: bundle.limits })
    let version = 1n
    for (const n of [onDisk, inMemory]) await primary.clones.hold(n.id, ADDRESS, bundle.hash, ownerKey, bundle.limits)
    const ask = async (): Promise<unknown> => await primary.runtime.ask(ADDRESS, 'increment', [1])
    const persisted: Latency[] = []
    const memory: Latency[] = []
    // warm-up of both
    for (const clone of [onDisk, inMemory]) { announce(primary.id, clone.id, version++); await timeSequential(ask, 50) }
    for (let r = 0; r < ROUNDS; r++) {
      announce(primary.id, onDisk.id, version++)
      persisted.push(await timeSequential(ask, ASKS))
      announce(primary.id, inMemory.id, version++)
      memory.push(await timeSequential(ask, ASKS))
    }
    const disk = meanLatency(persisted)
    const mem = meanLatency(memory)
    console.log(`bench clone-gated-ask: ${Math.round(disk.perSecond)} asks/s p50 ${disk.p50.toFixed(3)} ms with the clone writing what it holds to disk (clone in memory only ${Math.round(mem.perSecond)} asks/s p50 ${mem.p50.toFixed(3)} ms, ratio ${(disk.perSecond / mem.perSecond).toFixed(2)})`)

    // the alternative: the clone answers only after an fsync of each state
    const state = JSON.stringify((await primary.runtime.snapshot(ADDRESS)).state)
    const file = join(onDisk.dir, 'fsync-probe.json')
    const writes: number[] = []
    for (let i = 0; i < 100; i++) {
      const t = performance.now()
      await writeFileAtomic(file, state)
      writes.push(performance.now() - t)
    }
    const fsync = percentile(writes, 0.5)
    console.log(`bench clone-fsync-per-state: ${fsync.toFixed(3)} ms p50 per atomic write + fsync of one state (clone-gated ask p50 ${disk.p50.toFixed(3)} ms, ratio ${(fsync / disk.p50).toFixed(2)})`)
  } finally {
    await stopBenchNodes(nodes)
  }
}

await main()
