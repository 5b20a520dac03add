// `npm run sim:raft -- --seeds N [--from S] [--storage disk] [--trace]`: the deterministic
// Raft simulation over seeds S … S+N-1. A failing seed is printed with its violations and
// replays exactly with `--from <seed> --seeds 1` (add --trace to see what happened).
// `--storage disk` keeps every node's log in the disk WAL on a simulated file system with
// storage faults. The last line is always `seeds: N, violations: V`; the exit code is
// non-zero when V > 0.
import { Command, InvalidArgumentError } from 'commander'
import { seedCount } from './support/seed-args.js'
import { runSeed } from '../src/raft/sim/simulation.js'
import type { SimStorageKind } from '../src/raft/sim/simulation.js'

const STORAGE_KINDS: SimStorageKind[] = ['memory', 'disk']

function storageKind (v: string): SimStorageKind {
  const kind = STORAGE_KINDS.find(k => k === v)
  if (kind === undefined) throw new InvalidArgumentError(`unknown storage ${v} (known: ${STORAGE_KINDS.join(', ')})`)
  return kind
}

const program = new Command('sim-raft')
  .option('--seeds <n>', 'number of seeds to run', seedCount, 1000)
  .option('--from <seed>', 'first seed', seedCount, 1)
  .option('--storage <kind>', `where nodes keep their logs: ${STORAGE_KINDS.join(', ')} (the disk WAL on a simulated disk with faults)`, storageKind, 'memory')
  .option('--trace', 'print every notable event (for replaying one seed)', false)
  .option('--quiet', 'no progress lines', false)
  .parse()
const opts = program.opts<{ seeds: number, from: number, storage: SimStorageKind, trace: boolean, quiet: boolean }>()

const started = Date.now()
let violations = 0
let failedSeeds = 0
let operations = 0
let unknown = 0
const replayStorage = opts.storage === 'memory' ? '' : ` --storage ${opts.storage}`
for (let i = 0; i < opts.seeds; i++) {
  const seed = opts.from + i
  // a seed that throws (a node's code refused its own state, say) fails like a violation
  const r = await runSeed(seed, { storage: opts.storage, trace: opts.trace ? line => { console.log(line) } : undefined })
    .catch((err: Error) => ({ operations: 0, linearizability: 'ok', violations: [`threw: ${err.stack ?? err.message}`] }))
  operations += r.operations
  if (r.linearizability === 'unknown') unknown++
  if (r.violations.length > 0) {
    failedSeeds++
    violations += r.violations.length
    console.log(`seed ${seed} FAILED (replay: npm run sim:raft -- --from ${seed} --seeds 1${replayStorage} --trace)`)
    for (const v of r.violations) console.log(`  ${v}`)
  }
  if (!opts.quiet && (i + 1) % 1000 === 0) {
    console.log(`… ${i + 1} seeds, ${failedSeeds} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
}
console.log(`${operations} client operations checked for linearizability` + (unknown > 0 ? ` (${unknown} seeds too large to decide)` : '') + `, ${((Date.now() - started) / 1000).toFixed(1)} s`)
console.log(`seeds: ${opts.seeds}, violations: ${violations}`)
process.exitCode = violations > 0 ? 1 : 0
