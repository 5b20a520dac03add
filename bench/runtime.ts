// bench runtime-*: key lines of one run on Node 24 (Stem's runtime) beside the older system
// Node (Node 20 at /usr/bin/node, the runtime before; STEM_BENCH_OLD_NODE to pick another)
// on the same machine in the same run. Each sub-bench is the existing bench script, cut to
// its key lines, run once on each Node, one after the other:
//   remote-ask      bench/messaging.js remote-ask     (needs isolated-vm: Node 24 only)
//   cell-transform  bench/cells.js cell-transform     (needs isolated-vm: Node 24 only)
//   cell-local-ask  bench/cells.js cell-local-ask     (needs isolated-vm: Node 24 only)
//   cell-density    bench/cells.js cell-density       (needs isolated-vm: Node 24 only)
//   raft-commit     bench/raft.js commit              (libp2p + Raft + fsync: both, twice)
//   libp2p-echo     this file with --echo: raw libp2p round trips (TCP, Noise, Yamux): both, twice
// The older Node gets a Promise.withResolvers polyfill (libp2p needs it); a sub-bench it
// cannot run prints why. Ratio: the figure on Node 24 / on the older Node.
// `node dist/bench/runtime.js --echo` runs the libp2p echo alone and prints `bench libp2p-echo: …`.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createEd25519Key } from '../src/wire/keys.js'
import { createPlainLibp2p } from './support/plain-libp2p.js'
import { rawEcho } from './support/echo.js'
import { meanLatency, timeSequential, type Latency } from './support/stats.js'

const here = dirname(fileURLToPath(import.meta.url))
const OLD_NODE = process.env.STEM_BENCH_OLD_NODE ?? '/usr/bin/node'
const TIMEOUT_MS = 180_000

async function echo (): Promise<void> {
  const a = await createPlainLibp2p(await createEd25519Key())
  const b = await createPlainLibp2p(await createEd25519Key())
  try {
    await a.dial(b.getMultiaddrs()[0])
    const once = await rawEcho(a, b, 64)
    const rounds: Latency[] = []
    for (let r = 0; r < 3; r++) rounds.push(await timeSequential(once, 2000, r === 0 ? 500 : 20))
    const l = meanLatency(rounds)
    console.log(`bench libp2p-echo: ${Math.round(l.perSecond)}/s p50 ${l.p50.toFixed(3)} ms p99 ${l.p99.toFixed(3)} ms (64-byte round trips, one after another)`)
  } finally {
    await a.stop()
    await b.stop()
  }
}

interface Run { code: number | null, stdout: string, stderr: string, timedOut: boolean }

/** Runs a bench script on `node` in its own process group (its cluster children die with it on a timeout). */
async function runOn (node: string, script: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return await new Promise(resolve => {
    const child = spawn(node, ['--no-node-snapshot', join(here, script), ...args], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => { timedOut = true; try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} }, TIMEOUT_MS)
    child.on('error', err => { clearTimeout(timer); resolve({ code: null, stdout, stderr: err.message, timedOut }) })
    child.on('exit', code => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }) })
  })
}

/** `bench NAME: FIGURE (…)` → FIGURE */
function figureOf (run: Run, name: string): string | undefined {
  return new RegExp(`^bench ${name}: (.*?) \\(`, 'm').exec(run.stdout)?.[1]
}

const numberIn = (figure: string): number => Number(/\d[\d,]*(?:\.\d+)?/.exec(figure)?.[0].replace(/,/g, '') ?? NaN)

function whyFailed (run: Run): string {
  if (run.timedOut) return `timed out after ${TIMEOUT_MS / 1000} s`
  const text = `${run.stderr}\n${run.stdout}`
  const abi = /NODE_MODULE_VERSION (\d+)\. This version of Node\.js requires NODE_MODULE_VERSION (\d+)/.exec(text)
  if (abi != null) return `isolated-vm 7 is built for Node 24 (module version ${abi[1]}), this Node needs ${abi[2]}`
  // the first error message (not the source line node prints above it)
  const message = /^(?:\w*Error)(?: \[\w+\])?: (.*)$/m.exec(text)?.[1]
  return (message ?? `exit ${String(run.code)}`).trim().slice(0, 160)
}

function oldNodeVersion (): string | undefined {
  if (!existsSync(OLD_NODE)) return undefined
  const version = execFileSync(OLD_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
  return Number(version.split('.')[0]) < Number(process.versions.node.split('.')[0]) ? version : undefined
}

async function compare (): Promise<number> {
  const oldVersion = oldNodeVersion()
  const oldEnv = { NODE_OPTIONS: `--import=${pathToFileURL(join(here, 'support', 'promise-with-resolvers.js')).href}` }
  // those both Nodes run are run twice each, alternating (new, old, old, new), and the
  // better figure of each Node kept: the load of a shared machine varies from run to run
  const runs: Array<{ script: string, args: string[], lines: string[], twice?: boolean }> = [
    { script: 'messaging.js', args: ['remote-ask'], lines: ['remote-ask'] },
    { script: 'cells.js', args: ['cell-transform', 'cell-local-ask', 'cell-density'], lines: ['cell-transform', 'cell-local-ask', 'cell-density'] },
    { script: 'raft.js', args: ['commit'], lines: ['raft-commit'], twice: true },
    { script: 'runtime.js', args: ['--echo'], lines: ['libp2p-echo'], twice: true }
  ]
  let failed = 0
  for (const { script, args, lines, twice } of runs) {
    const currents = [await runOn(process.execPath, script, args, {})]
    const olds = oldVersion !== undefined ? [await runOn(OLD_NODE, script, args, oldEnv)] : []
    if (twice === true && olds.length > 0) {
      olds.push(await runOn(OLD_NODE, script, args, oldEnv))
      currents.push(await runOn(process.execPath, script, args, {}))
    }
    /** the figure with the higher rate of these runs */
    const best = (of: Run[], name: string): string | undefined => of.map(r => figureOf(r, name)).filter(f => f !== undefined).sort((x, y) => numberIn(y) - numberIn(x))[0]
    const current = currents[0]
    const old = olds[0] as Run | undefined
    for (const name of lines) {
      const now = best(currents, name)
      const before = best(olds, name)
      if (now === undefined) { failed++; console.log(`bench runtime-${name}: failed on Node ${process.versions.node}: ${whyFailed(current)}`); continue }
      const beside = oldVersion === undefined
        ? `no older Node at ${OLD_NODE}, ratio n/a`
        : before === undefined
          ? `Node ${oldVersion}: cannot run: ${whyFailed(old as Run)}, ratio n/a`
          : `Node ${oldVersion} with a Promise.withResolvers polyfill: ${before}, ratio ${(numberIn(now) / numberIn(before)).toFixed(2)}`
      console.log(`bench runtime-${name}: ${now} on Node ${process.versions.node} (${beside})`)
    }
  }
  return failed
}

if (process.argv.includes('--echo')) await echo()
else process.exitCode = await compare() > 0 ? 1 : 0
