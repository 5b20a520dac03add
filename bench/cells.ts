// Cells benchmarks (issue #4): transform latency, local asks/s between two cells, and
// memory per idle transformed cell, each beside a raw baseline measured in the same run.
import ivm from 'isolated-vm'
import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { createCellRuntime } from '../src/cells/runtime.js'
import { signBundle } from '../src/cells/bundle.js'
import type { CellBundle } from '../src/cells/bundle.js'
import type { CellLimits } from '../src/cells/limits.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { percentile } from './support/stats.js'

const MIB = 1024 * 1024
const owner = await createEd25519Key()
const runtime = createCellRuntime()
runtime.start()

const limits: CellLimits = { memory: 16 * MIB, timeout: 60_000, mailbox: 1000 }
const COUNTER = 'export default class Counter { count = 0; inc () { return ++this.count } get () { return this.count } }'
const DRIVER = `export default class Driver {
  async run (target, n, window) {
    for (let i = 0; i < n; i += window) {
      const batch = []
      for (let j = 0; j < window; j++) batch.push(stem.ask(target, 'inc'))
      await Promise.all(batch)
    }
    return n
  }
}`

const bundle = async (app: string, cell: string, code: string): Promise<CellBundle> =>
  signBundle({ app, cell, entry: `${cell}.js`, code, limits }, owner)

const ms = (v: number): string => `${v.toFixed(2)} ms`

// `node dist/bench/cells.js [cell-transform] [cell-local-ask] [cell-density]`: only those (default all)
const only = process.argv.slice(2)
const wanted = (name: string): boolean => only.length === 0 || only.includes(name)

function rssOf (pid: number): number {
  return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096
}

// --- cell-transform ---------------------------------------------------------------------
if (wanted('cell-transform')) {
  const N = 300
  const bundles: CellBundle[] = []
  for (let i = 0; i < N + 20; i++) bundles.push(await bundle('tbench', `c${i}`, COUNTER))
  // warm up: start the cell host and compile the code once
  for (let i = 0; i < 20; i++) await runtime.transform(`tbench/c${i}#0`, bundles[i], { owner: owner.publicKey })
  const times: number[] = []
  for (let i = 20; i < N + 20; i++) {
    // one transform at a time, as a node receives them: the cell host's blank stem cells
    // are refilled between transforms (bursts beyond the warm pool cost ~1 isolate creation more)
    await delay(10)
    const t = performance.now()
    await runtime.transform(`tbench/c${i}#0`, bundles[i], { owner: owner.publicKey })
    times.push(performance.now() - t)
  }
  for (let i = 0; i < N + 20; i++) await runtime.revert(`tbench/c${i}#0`)
  const raw: number[] = []
  const isolates: ivm.Isolate[] = []
  for (let i = 0; i < N; i++) {
    const t = performance.now()
    const isolate = new ivm.Isolate({ memoryLimit: 16 })
    isolate.createContextSync()
    raw.push(performance.now() - t)
    isolates.push(isolate)
  }
  for (const isolate of isolates) isolate.dispose()
  times.sort((a, b) => a - b)
  raw.sort((a, b) => a - b)
  console.log(`bench cell-transform: p50 ${ms(percentile(times, 0.5))}, p99 ${ms(percentile(times, 0.99))} (raw new Isolate()+createContext() p50 ${ms(percentile(raw, 0.5))}, p99 ${ms(percentile(raw, 0.99))}, ratio ${(percentile(times, 0.5) / percentile(raw, 0.5)).toFixed(2)})`)
}

// --- cell-local-ask ---------------------------------------------------------------------
if (wanted('cell-local-ask')) {
  await runtime.transform('abench/target#0', await bundle('abench', 'target', COUNTER), { owner: owner.publicKey })
  await runtime.transform('abench/driver#0', await bundle('abench', 'driver', DRIVER), { owner: owner.publicKey })
  await runtime.ask('abench/driver#0', 'run', ['abench/target#0', 20_000, 500]) // warm up
  // best of three rounds for each figure: the machine may be shared
  let cellRate = 0
  let plainRate = 0
  let rawRate = 0
  class Plain { count = 0; inc (): number { return ++this.count } }
  const plain = new Plain()
  const isolate = new ivm.Isolate({ memoryLimit: 16 })
  const context = isolate.createContextSync()
  const inc = context.evalSync('let count = 0; (function inc () { return ++count })', { reference: true }) as ivm.Reference<() => number>
  for (let round = 0; round < 3; round++) {
    const n = 100_000
    let t0 = performance.now()
    await runtime.ask('abench/driver#0', 'run', ['abench/target#0', n, 500])
    cellRate = Math.max(cellRate, n / ((performance.now() - t0) / 1000))

    const calls = 5_000_000
    t0 = performance.now()
    for (let i = 0; i < calls; i++) plain.inc()
    plainRate = Math.max(plainRate, calls / ((performance.now() - t0) / 1000))

    const rawCalls = 100_000
    t0 = performance.now()
    for (let i = 0; i < rawCalls; i++) inc.applySync(undefined, [])
    rawRate = Math.max(rawRate, rawCalls / ((performance.now() - t0) / 1000))
  }
  isolate.dispose()
  const fmt = (r: number): string => `${Math.round(r).toLocaleString('en-US')}/s`
  console.log(`bench cell-local-ask: ${fmt(cellRate)} (plain JS method call ${fmt(plainRate)}, raw isolated-vm applySync ${fmt(rawRate)}, ratio ${(cellRate / rawRate).toFixed(3)})`)
  await runtime.revert('abench/target#0')
  await runtime.revert('abench/driver#0')
}

// --- cell-density -----------------------------------------------------------------------
if (wanted('cell-density')) {
  const N = 1000
  await runtime.transform('dbench/seed#0', await bundle('dbench', 'seed', COUNTER), { owner: owner.publicKey })
  const pid = runtime.hostPids().get('dbench') as number
  await runtime.ask('dbench/seed#0', 'inc')
  const before = rssOf(pid)
  for (let i = 0; i < N; i++) await runtime.transform(`dbench/c${i}#0`, await bundle('dbench', `c${i}`, COUNTER), { owner: owner.publicKey })
  for (let i = 0; i < N; i++) await runtime.ask(`dbench/c${i}#0`, 'inc')
  const perCell = (rssOf(pid) - before) / N

  const rawBefore = process.memoryUsage.rss()
  const isolates: ivm.Isolate[] = []
  for (let i = 0; i < 300; i++) {
    const isolate = new ivm.Isolate({ memoryLimit: 16 })
    isolate.createContextSync().evalSync('1')
    isolates.push(isolate)
  }
  const rawPer = (process.memoryUsage.rss() - rawBefore) / isolates.length
  for (const isolate of isolates) isolate.dispose()
  const mib = (v: number): string => `${(v / MIB).toFixed(2)} MiB`
  console.log(`bench cell-density: ${mib(perCell)} per idle transformed cell, ${Math.floor(4096 / (perCell / MIB)).toLocaleString('en-US')} cells in 4 GiB (raw Isolate+context ${mib(rawPer)}, ratio ${(perCell / rawPer).toFixed(2)})`)
}

await runtime.stop()
