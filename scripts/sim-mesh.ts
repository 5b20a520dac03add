// `npm run sim:mesh -- --seeds N [--from S]`: the deterministic whole-mesh simulation over
// seeds S … S+N-1. A failing seed is printed with its violations and replays exactly with
// `--seed <seed> --trace`. The last line is always `seeds: N, violations: V`; the exit code
// is non-zero when V > 0.
import { Command, InvalidArgumentError } from 'commander'
import { FAULT_KINDS, runMeshSeed } from '../src/topology/sim/mesh-simulation.js'
import type { FaultKind } from '../src/topology/sim/mesh-simulation.js'
import { seedCount } from './support/seed-args.js'

function faultKinds (v: string): FaultKind[] {
  const kinds = v.split(',').map(x => x.trim()).filter(x => x !== '')
  const unknown = kinds.filter(k => !(FAULT_KINDS as readonly string[]).includes(k))
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown fault kind ${unknown.join(', ')} (known: ${FAULT_KINDS.join(', ')})`)
  return kinds as FaultKind[]
}

const program = new Command('sim-mesh')
  .option('--seeds <n>', 'number of seeds to run', seedCount, 100)
  .option('--from <seed>', 'first seed', seedCount, 1)
  .option('--seed <seed>', 'run this one seed (same as --from S --seeds 1)', seedCount)
  .option('--trace', 'print every notable event (for replaying one seed)', false)
  .option('--without <faults>', `leave out kinds of faults, comma-separated: ${FAULT_KINDS.join(', ')}`, faultKinds)
  .option('--quiet', 'no progress lines', false)
  .parse()
const opts = program.opts<{ seeds: number, from: number, seed?: number, trace: boolean, quiet: boolean, without?: FaultKind[] }>()
const from = opts.seed ?? opts.from
const seeds = opts.seed === undefined ? opts.seeds : 1

const started = Date.now()
let violations = 0
let failed = 0
let acknowledged = 0
let lostWithNode = 0
let virtualMs = 0
for (let i = 0; i < seeds; i++) {
  const seed = from + i
  const r = runMeshSeed(seed, { without: opts.without, trace: opts.trace ? line => { console.log(line) } : undefined })
  acknowledged += r.acknowledged
  lostWithNode += r.lostWithNode
  virtualMs += r.virtualMs
  if (r.violations.length > 0) {
    failed++
    violations += r.violations.length
    console.log(`seed ${seed} FAILED (replay: npm run sim:mesh -- --seed ${seed} --trace)`)
    for (const v of r.violations) console.log(`  ${v}`)
  }
  if (!opts.quiet && (i + 1) % 500 === 0) console.log(`… ${i + 1} seeds, ${failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`)
}
const seconds = (Date.now() - started) / 1000
console.log(`${acknowledged} acknowledged adds checked (${lostWithNode} held only by a node gone for good), ${(virtualMs / 1000).toFixed(0)} virtual s in ${seconds.toFixed(1)} s`)
console.log(`seeds: ${seeds}, violations: ${violations}`)
process.exitCode = violations > 0 ? 1 : 0
