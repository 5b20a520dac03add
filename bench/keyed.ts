// bench keyed-activation (issue 18): the first message to a cold key of a keyed cell (its
// fields saved in the shard's state, restored from disk by a fresh runtime: the key is
// activated from them) beside an ask to a key already active and to an unkeyed instance,
// in the same run, one ask at a time, on a real cell host.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCellRuntime } from '../src/cells/runtime.js'
import { signBundle } from '../src/cells/bundle.js'
import type { CellLimits } from '../src/cells/limits.js'
import { withKeyedExport } from '../src/cells/keys.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { percentile } from './support/stats.js'

const KEYS = 2000
const limits: CellLimits = { memory: 32 * 1024 * 1024, timeout: 10_000, mailbox: 1000 }
const CART = 'export default class Cart { items = []; add (sku) { this.items.push(sku); return this.items.length } get () { return this.items.length } }'
const owner = await createEd25519Key()
const keyed = await signBundle({ app: 'kbench', cell: 'cart', entry: 'cart.js', code: withKeyedExport(CART, 300_000), limits }, owner)
const plain = await signBundle({ app: 'kbench', cell: 'plain', entry: 'plain.js', code: CART, limits }, owner)
const dataDir = await mkdtemp(join(tmpdir(), 'stem-bench-keyed-'))

async function timed (once: () => Promise<unknown>): Promise<number> {
  const t = performance.now()
  await once()
  return performance.now() - t
}

try {
  // the keys' states, written to disk by one runtime
  const first = createCellRuntime({ dataDir })
  first.start()
  await first.transform('kbench/cart#0', keyed, { owner: owner.publicKey })
  for (let i = 0; i < KEYS; i++) await first.ask(`kbench/cart#0/user-${i}`, 'add', ['fig'])
  await first.stop()

  // a fresh runtime restores the shard from disk: every key is cold (passivated)
  const runtime = createCellRuntime({ dataDir })
  runtime.start()
  const saved = await runtime.loadState('kbench/cart#0')
  if (saved === undefined) throw new Error('the shard state was not on disk')
  await runtime.transform('kbench/cart#0', keyed, { owner: owner.publicKey, state: saved.state, version: saved.version })
  await runtime.transform('kbench/plain#0', plain, { owner: owner.publicKey })
  for (let i = 0; i < 200; i++) await runtime.ask('kbench/plain#0', 'get')
  const cold: number[] = []
  const active: number[] = []
  const unkeyed: number[] = []
  for (let i = 0; i < KEYS; i++) {
    cold.push(await timed(async () => await runtime.ask(`kbench/cart#0/user-${i}`, 'get')))
    active.push(await timed(async () => await runtime.ask(`kbench/cart#0/user-${i}`, 'get')))
    unkeyed.push(await timed(async () => await runtime.ask('kbench/plain#0', 'get')))
  }
  await runtime.stop()
  const f = (xs: number[]): string => `p50 ${percentile(xs, 0.5).toFixed(3)} ms p99 ${percentile(xs, 0.99).toFixed(3)} ms`
  console.log(`bench keyed-activation: first message to a cold key ${f(cold)} (an active key ${f(active)}; an unkeyed instance ${f(unkeyed)}; ${KEYS} keys in one shard; ratio ${(percentile(cold, 0.5) / percentile(unkeyed, 0.5)).toFixed(2)})`)
} finally {
  await rm(dataDir, { recursive: true, force: true })
}
