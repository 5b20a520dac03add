// bench wan-ask-homes, on the namespace internet (scripts/netns/run.sh, one public host and
// two homes; this file re-runs itself inside run.sh when started outside): sequential
// remote asks between two NAT'd homes, each a real `stem` process, over a hole-punched
// WebRTC connection; baseline: the same two homes through the circuit relay on the public
// host, same run. The counter example runs on one home, its clone on the other, and the
// other home (the caller) asks it (`get`) through its own control API
// (bench/support/timed-asks.ts, run in the caller's namespace). Order: both routers
// port-preserving, and the homes on WebRTC before the app is published, so the caller's
// cell messaging stream opens on the WebRTC connection (libp2p opens new streams on a
// direct connection); then both routers symmetric and the caller restarted (same data
// dir), so its new connection to the other home stays relayed (every punch fails) and the
// stream opens on the relay. Asks are timed at 1% loss, like `bench wan-ask`; latency only
// where sch_netem exists (the line says which).
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runToEnd, stopAll, type StemProcess } from '../scripts/support/stem-process.js'
import { waitFor } from '../scripts/support/wait.js'
import { counterAcross, dumpNodes, netnsCall, nsOf, pathBetween, spawnStemIn, startMesh, stemIn, type NetnsLayout } from '../test/netns/netns-stem.js'
import { setLogLevel } from '../src/util/logger.js'
import { impairmentLabel, netnsBench } from './support/netns-bench.js'
import type { Latency } from './support/stats.js'

const ASKS = 300
const WARMUP = 100
const [RTT_MS, LOSS_PCT] = [50, 1]
const TIMED_ASKS = join(dirname(fileURLToPath(import.meta.url)), 'support', 'timed-asks.js')
const HOMES = ['home1', 'home2'] as const

async function run (layout: NetnsLayout): Promise<void> {
  setLogLevel('silent')
  const nodes = new Map<string, StemProcess>()
  const natMode = async (mode: 'cone' | 'symmetric'): Promise<void> => {
    for (const h of HOMES) await netnsCall(layout, 'netns_nat_mode', nsOf(layout, h), mode)
  }
  const bothOn = async (path: string, what: string): Promise<void> => {
    await waitFor(async () => await pathBetween(layout, nodes, 'home1', 'home2') === path && await pathBetween(layout, nodes, 'home2', 'home1') === path,
      { timeout: 120_000, interval: 500, what })
  }
  try {
    await natMode('cone')
    await startMesh(layout, nodes, 'pub1', [...HOMES])
    await bothOn('webrtc', 'the homes to reach each other over WebRTC')
    const { caller } = await counterAcross(layout, nodes, [...HOMES])
    const other = caller === 'home1' ? 'home2' : 'home1'
    const asks = async (path: string): Promise<Latency> => {
      await netnsCall(layout, 'netns_impair', String(RTT_MS), String(LOSS_PCT))
      try {
        const r = await runToEnd('ip', ['netns', 'exec', nsOf(layout, caller), process.execPath, '--no-node-snapshot', TIMED_ASKS, nodes.get(caller)!.dataDir, 'counter/counter', 'get', String(ASKS), String(WARMUP)])
        if (r.code !== 0) throw new Error(`timed asks from ${caller} exited ${String(r.code)}: ${r.stderr.trim()}`)
        const seen = await pathBetween(layout, nodes, caller, other)
        if (seen !== path) throw new Error(`${caller} reached ${other} by ${seen ?? 'no connection'} after the asks, not ${path}`)
        return JSON.parse(r.stdout) as Latency
      } finally {
        await netnsCall(layout, 'netns_impair', '0', '0')
      }
    }
    const direct = await asks('webrtc')

    await natMode('symmetric')
    const stopped = nodes.get(caller)!
    stopped.signal('SIGINT')
    await waitFor(() => !stopped.running, { timeout: 60_000, what: `${caller} to leave` })
    nodes.set(caller, await (await spawnStemIn(nsOf(layout, caller), ['start'], stopped.dataDir)).ready())
    await bothOn('relayed', `the restarted ${caller} and ${other} to reach each other through the relay`)
    await waitFor(async () => (await stemIn(nsOf(layout, caller), ['call', 'counter/counter', 'get', '--data', stopped.dataDir])).code === 0,
      { timeout: 60_000, what: `the restarted ${caller} to reach the counter` })
    const relayed = await asks('relayed')

    const ms = (x: number): string => x.toFixed(1)
    console.log(`bench wan-ask-homes: p50 ${ms(direct.p50)} ms, p99 ${ms(direct.p99)} ms per remote ask between two NAT'd homes over WebRTC at ${impairmentLabel(layout, RTT_MS, LOSS_PCT)}, ${ASKS} asks through the caller's control API (the same homes through the relay on a public host p50 ${ms(relayed.p50)} ms, p99 ${ms(relayed.p99)} ms, ratio ${(direct.p50 / relayed.p50).toFixed(2)})`)
  } catch (err) {
    dumpNodes(nodes, Number(process.env.BENCH_DUMP_LINES ?? 40))
    throw err
  } finally {
    await stopAll()
  }
}

await netnsBench({ url: import.meta.url, layout: ['--pubs', '1', '--homes', '2'] }, run)
