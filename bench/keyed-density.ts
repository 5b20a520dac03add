// bench keyed-density (issue 18): what a key of a keyed cell costs, on a real cell host.
//   - idle (passivated) keys: each holds a 100-byte state and has no activation; its
//     fields live in its shard's state (in the shard's isolate, and on disk in the shard's
//     state file). Keys per GiB of cell-host memory (RSS) and per GiB of disk (state
//     files), with the ceiling the per-state bound sets.
//   - active keys: the same keys with an activation each (idle time not reached).
// One runtime writes the keys; a fresh one restores the shards from disk (every key
// passivated) and is measured, so the garbage of the writes (each answer carries the
// shard's whole state) does not count as the keys' memory. Memory is the cell host's RSS
// growth, less what as many empty shards cost.
//   - beside them, in the same run, unkeyed instances of the same class (one isolate each):
//     the ratio is how many more active keys than instances a GiB holds.
import { readdir, stat, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCellRuntime } from '../src/cells/runtime.js'
import type { CellRuntime } from '../src/cells/runtime.js'
import { signBundle } from '../src/cells/bundle.js'
import type { CellLimits } from '../src/cells/limits.js'
import { MAX_SHARDS, withKeyedExport } from '../src/cells/keys.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { childPids, rssBytes } from './support/proc-usage.js'

const SHARDS = 4
const KEYS_PER_SHARD = 2000
const INSTANCES = 16
const STATE = 'x'.repeat(100)
const GIB = 2 ** 30
/** the bound on a state's JSON (the runtime refuses a message whose state would pass it) */
const STATE_BOUND = 2 ** 20
const limits: CellLimits = { memory: 64 * 1024 * 1024, timeout: 10_000, mailbox: 1000 }
const ITEM = 'export default class Item { data = \'\'; put (s) { this.data = s; return s.length } get () { return this.data.length } }'

const owner = await createEd25519Key()
const dataDir = await mkdtemp(join(tmpdir(), 'stem-bench-density-'))

/** the RSS of this process's cell host (the runtime's only child: every cell here is of one app), after a settling pause */
async function hostRss (): Promise<number> {
  const pids = childPids(process.pid)
  if (pids.length !== 1) throw new Error(`expected one cell host, found ${pids.length}`)
  // let freed pages go back and the isolates' GC run its idle tasks before reading
  await new Promise(resolve => setTimeout(resolve, 1500))
  return rssBytes(pids[0])
}

async function dirBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size
  }
  return total
}

async function fill (runtime: CellRuntime, cell: string): Promise<void> {
  // 50 in flight per shard: each answer carries the shard's whole state, and a deep queue of them would hold the cell host's memory
  for (let s = 0; s < SHARDS; s++) {
    for (let from = 0; from < KEYS_PER_SHARD; from += 50) {
      await Promise.all(Array.from({ length: Math.min(50, KEYS_PER_SHARD - from) }, async (_, k) => await runtime.ask(`dense/${cell}#${s}/k-${s}-${from + k}`, 'put', [STATE])))
    }
  }
}

const perGib = (bytesPerItem: number): string => bytesPerItem <= 0 ? 'n/a (below the noise)' : Math.floor(GIB / bytesPerItem).toLocaleString('en-US')

try {
  const idleBundle = await signBundle({ app: 'dense', cell: 'idle', entry: 'item.js', code: withKeyedExport(ITEM, 600_000), limits }, owner)
  const emptyBundle = await signBundle({ app: 'dense', cell: 'empty', entry: 'item.js', code: withKeyedExport(ITEM, 600_000), limits }, owner)
  const plainBundle = await signBundle({ app: 'dense', cell: 'plain', entry: 'item.js', code: ITEM, limits }, owner)
  const keys = SHARDS * KEYS_PER_SHARD
  const shards = Array.from({ length: SHARDS }, (_, s) => `dense/idle#${s}`)

  // the keys' states, written to disk by one runtime
  const writer = createCellRuntime({ dataDir })
  writer.start()
  for (const shard of shards) await writer.transform(shard, idleBundle, { owner: owner.publicKey })
  await fill(writer, 'idle')
  await writer.stop()
  const disk = await dirBytes(dataDir)

  const runtime = createCellRuntime({ dataDir })
  runtime.start()
  // baseline: unkeyed instances of the same class, each its own isolate
  await runtime.transform('dense/plain#0', plainBundle, { owner: owner.publicKey })
  const plainBefore = await hostRss()
  for (let i = 1; i <= INSTANCES; i++) {
    await runtime.transform(`dense/plain#${i}`, plainBundle, { owner: owner.publicKey })
    await runtime.ask(`dense/plain#${i}`, 'put', [STATE])
  }
  const empty = await hostRss()
  const plainMemPerInstance = (empty - plainBefore) / INSTANCES
  for (let s = 0; s < SHARDS; s++) await runtime.transform(`dense/empty#${s}`, emptyBundle, { owner: owner.publicKey })
  const emptyShards = await hostRss()
  // idle keys: the shards restored from disk, every key passivated
  for (const shard of shards) {
    const saved = await runtime.loadState(shard)
    if (saved === undefined) throw new Error(`the state of ${shard} was not on disk`)
    await runtime.transform(shard, idleBundle, { owner: owner.publicKey, state: saved.state, version: saved.version })
  }
  const stored = shards.reduce((sum, shard) => sum + (runtime.cell(shard)?.keys?.stored ?? 0), 0)
  if (stored !== keys) throw new Error(`${stored} of ${keys} keys were restored`)
  const idle = await hostRss()
  const idleMemPerKey = ((idle - emptyShards) - (emptyShards - empty)) / keys
  // active keys: a read activates each key, which then stays active (idle time 10 min)
  for (const [s, shard] of shards.entries()) {
    for (let from = 0; from < KEYS_PER_SHARD; from += 50) {
      await Promise.all(Array.from({ length: Math.min(50, KEYS_PER_SHARD - from) }, async (_, k) => await runtime.ask(`${shard}/k-${s}-${from + k}`, 'get')))
    }
  }
  const active = shards.reduce((sum, shard) => sum + (runtime.cell(shard)?.keys?.active.length ?? 0), 0)
  if (active !== keys) throw new Error(`${active} of ${keys} keys were active at the measurement`)
  const activeMemPerKey = (await hostRss() - idle) / keys
  await runtime.stop()

  const diskPerKey = disk / keys
  const ceiling = Math.floor(STATE_BOUND / Math.max(1, diskPerKey)) * MAX_SHARDS
  console.log(`bench keyed-density: idle keys per GiB: ${perGib(idleMemPerKey)} of cell-host memory (${Math.round(idleMemPerKey)} B each), ${perGib(diskPerKey)} of disk (${Math.round(diskPerKey)} B each), no isolate each; at most ${ceiling.toLocaleString('en-US')} per cell (${MAX_SHARDS} shards × 1 MiB state); active keys per GiB: ${perGib(activeMemPerKey)} (${Math.round(activeMemPerKey)} B more each); ${keys} keys of 100-byte states in ${SHARDS} shards (unkeyed instances per GiB ${perGib(plainMemPerInstance)}, ${(plainMemPerInstance / 2 ** 20).toFixed(1)} MiB each; ratio active keys/instances ${(plainMemPerInstance / Math.max(1, activeMemPerKey)).toFixed(0)})`)
} finally {
  await rm(dataDir, { recursive: true, force: true })
}
