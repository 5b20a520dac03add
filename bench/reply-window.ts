// What the reply window costs (issue 14, exactly-once retries): each state a primary sends
// to its clone and fsyncs carries the instance's reply window (up to 256 recorded results).
// Two in-process nodes as in `bench durable-ask` (counters with one clone each, durability
// disk, real cell host, TCP + Noise + Yamux, fsync on both), 64 clients at once; rounds
// alternate between asks with a message key to one instance (what the gateway, the SDK
// and cell messaging send: its window fills to its bound and travels with every state)
// and asks without one to another instance (its window stays empty).
//   reply-window-64   asks/s with message keys (without: the baseline)
import { signBundle } from '../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../src/cells/limits.js'
import { createEd25519Key, encodePublicKey, peerIdOf } from '../src/wire/keys.js'
import { setLogLevel } from '../src/util/logger.js'
import { AppTable } from '../src/topology/app-table.js'
import type { CloneService } from '../src/topology/clones.js'
import { ADDRESS, COUNTER, createBenchNode, MESH, stopBenchNodes } from './support/clone-nodes.js'

setLogLevel('silent')
const ROUNDS = 4
const CLIENTS = 64
const ASKS = 1000

const table = new AppTable()
let gate: CloneService | undefined
let keys = 0
/** the instance asked without message keys */
const PLAIN = ADDRESS.replace(/#\d+$/, '#1')

/** `total` asks from `clients` clients at once; rate in asks/s */
async function concurrent (ask: () => Promise<unknown>, clients: number, total: number): Promise<number> {
  let left = total
  const start = performance.now()
  await Promise.all(Array.from({ length: clients }, async () => {
    while (left-- > 0) await ask()
  }))
  return total / ((performance.now() - start) / 1000)
}

async function main (): Promise<void> {
  const node = async (): ReturnType<typeof createBenchNode> => await createBenchNode({ mesh: MESH, table, gate: () => gate, clones: true, primaries: true })
  const primary = await node()
  const clone = await node()
  try {
    await primary.libp2p.dial(clone.libp2p.getMultiaddrs()[0])
    gate = primary.clones
    const owner = await createEd25519Key()
    const bundle = await signBundle({ app: 'bench', cell: 'counter', entry: 'counter.js', code: COUNTER, limits: { ...DEFAULT_LIMITS, mailbox: 10_000 } }, owner)
    await primary.bundles.publish(bundle)
    table.update({
      app: 'bench', owner: peerIdOf(owner.publicKey), leader: primary.id, term: 1n, version: 1n, members: [primary.id],
      instances: [ADDRESS, PLAIN].map(address => ({ address, node: primary.id, epoch: 1n, state: 'transformed', clones: [clone.id], clonesReady: [] })),
      cells: [{ name: 'counter', replicas: 1, timeout: 500, durability: 'disk' }], routes: [], reverted: false
    })
    const ownerKey = encodePublicKey(owner.publicKey)
    for (const address of [ADDRESS, PLAIN]) {
      await primary.runtime.transform(address, bundle, { owner: ownerKey, limits: bundle.limits })
      await primary.clones.hold(clone.id, address, bundle.hash, ownerKey, bundle.limits)
    }
    const keyed = async (): Promise<unknown> => await primary.runtime.ask(ADDRESS, 'increment', [1], { messageKey: `${primary.id}/${(keys++).toString(16).padStart(32, '0')}` })
    const plain = async (): Promise<unknown> => await primary.runtime.ask(PLAIN, 'increment', [1])
    // the window at its bound of 256 entries before the rounds
    await concurrent(keyed, CLIENTS, 600)
    await concurrent(plain, CLIENTS, 200)
    const rates = { keyed: [] as number[], plain: [] as number[] }
    for (let r = 0; r < ROUNDS; r++) {
      rates.keyed.push(await concurrent(keyed, CLIENTS, ASKS))
      rates.plain.push(await concurrent(plain, CLIENTS, ASKS))
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    const k = mean(rates.keyed)
    const p = mean(rates.plain)
    console.log(`bench reply-window-64: ${Math.round(k)} asks/s with message keys, the window of 256 results travelling with each state (without keys ${Math.round(p)} asks/s, ratio ${(k / p).toFixed(2)})`)
  } finally {
    await stopBenchNodes([primary, clone])
  }
}

await main()
