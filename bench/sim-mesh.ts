// bench sim-mesh: how fast the whole-mesh simulation runs: seeds per second and virtual
// seconds simulated per real second, beside the Raft simulation's seeds per second in the
// same run (the baseline: one Raft group, no control plane).
import { runMeshSeed } from '../src/topology/sim/mesh-simulation.js'
import { runSeed } from '../src/raft/sim/simulation.js'

const SEEDS = 200

async function timed (fn: () => void | Promise<void>): Promise<number> {
  const started = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - started) / 1e9
}

let virtualMs = 0
const meshSeconds = await timed(() => {
  for (let seed = 1; seed <= SEEDS; seed++) virtualMs += runMeshSeed(seed, { without: ['partition', 'stall', 'mesh-restart'] }).virtualMs
})
const raftSeconds = await timed(async () => {
  for (let seed = 1; seed <= SEEDS; seed++) await runSeed(seed)
})
const meshRate = SEEDS / meshSeconds
const raftRate = SEEDS / raftSeconds
console.log(`bench sim-mesh: ${meshRate.toFixed(0)} seeds/s, ${(virtualMs / 1000 / meshSeconds).toFixed(0)} virtual s per real s, ${SEEDS} seeds (sim:raft ${raftRate.toFixed(0)} seeds/s, ratio ${(meshRate / raftRate).toFixed(2)})`)
