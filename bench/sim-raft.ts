// bench sim-raft: how fast `sim:raft --storage disk` runs (the disk WAL on simulated disks
// with storage faults) beside the same seeds on MemoryLogStorage in the same run (the
// baseline): seeds per second and the ratio, which is what the 2,000 disk seeds of CI cost.
import { runSeed } from '../src/raft/sim/simulation.js'
import type { SimStorageKind } from '../src/raft/sim/simulation.js'

const SEEDS = 300

async function seedsPerSecond (storage: SimStorageKind): Promise<number> {
  const started = process.hrtime.bigint()
  for (let seed = 1; seed <= SEEDS; seed++) await runSeed(seed, { storage })
  return SEEDS / (Number(process.hrtime.bigint() - started) / 1e9)
}

const memory = await seedsPerSecond('memory')
const disk = await seedsPerSecond('disk')
console.log(`bench sim-raft: ${disk.toFixed(0)} disk seeds/s, ${SEEDS} seeds (memory ${memory.toFixed(0)} seeds/s, ratio ${(disk / memory).toFixed(2)})`)
