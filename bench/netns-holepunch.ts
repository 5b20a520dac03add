// bench holepunch, on the namespace internet (scripts/netns/run.sh, one public host and two
// homes; this file re-runs itself inside run.sh when started outside). Each trial is a new
// pair of homes: a fresh mesh of real `stem` processes (the public host relays and serves
// STUN, the two homes join with its invite), which either ends direct (both homes list the
// other with `path` `webrtc` in `stem peers --json`) or stays on the relay. Measured: the
// share of pairs ending direct and, from the nodes' logs, the time from first contact (the
// first home to hear of the other: its `peer seen` line) to direct (the dialler's `WebRTC
// connection to` line), p50/p99, behind port-preserving NATs; baseline: the same number of
// pairs behind symmetric NATs in the same run (no punch gets through: a pair counts as
// relayed once both list the other as `relayed` and a failed attempt is in /metrics).
// On a clean network; where sch_netem is missing the line says no latency was emulated.
import { stopAll, type StemProcess } from '../scripts/support/stem-process.js'
import { waitFor } from '../scripts/support/wait.js'
import { netnsCall, nsOf, pathBetween, startMesh, webrtcUpgrades, type NetnsLayout } from '../test/netns/netns-stem.js'
import { setLogLevel } from '../src/util/logger.js'
import { netnsBench } from './support/netns-bench.js'
import { firstLogTime } from './support/log-times.js'
import { percentile } from './support/stats.js'

const PAIRS = Number(process.env.BENCH_HOLEPUNCH_PAIRS ?? 5)
/** how long a pair may take to end direct (or, behind symmetric NATs, to fail a punch) */
const PAIR_TIMEOUT_MS = 120_000
const HOMES = ['home1', 'home2'] as const
type NatMode = 'cone' | 'symmetric'
interface Pair {
  path: 'webrtc' | 'relayed' | 'undecided'
  toDirectMs?: number
  /** WebRTC attempts of the pair that failed (/metrics of both homes) */
  failed?: number
}

async function trial (layout: NetnsLayout, mode: NatMode): Promise<Pair> {
  const nodes = new Map<string, StemProcess>()
  try {
    await startMesh(layout, nodes, 'pub1', [...HOMES])
    const path = await waitFor(async () => {
      const paths = await Promise.all([pathBetween(layout, nodes, 'home1', 'home2'), pathBetween(layout, nodes, 'home2', 'home1')])
      if (paths.every(p => p === 'webrtc')) return 'webrtc' as const
      if (mode === 'cone' || !paths.every(p => p === 'relayed')) return false
      const counts = await Promise.all(HOMES.map(async h => webrtcUpgrades(layout, nodes, h)))
      return counts.some(c => c.failed > 0) && 'relayed' as const
    }, { timeout: PAIR_TIMEOUT_MS, interval: 200, what: `a pair behind ${mode} NATs to end direct${mode === 'cone' ? '' : ' or fail a punch'}` })
      .catch((err: Error) => { console.error(`bench holepunch: ${err.message}`); return 'undecided' as const })
    if (path !== 'webrtc') return { path }
    const [a, b] = HOMES.map(h => nodes.get(h)!)
    const [aId, bId] = [a.peerId(), b.peerId()]
    const contact = Math.min(firstLogTime(a.stderr, `peer seen ${bId}`) ?? Infinity, firstLogTime(b.stderr, `peer seen ${aId}`) ?? Infinity)
    const direct = Math.min(firstLogTime(a.stderr, `WebRTC connection to ${bId}`) ?? Infinity, firstLogTime(b.stderr, `WebRTC connection to ${aId}`) ?? Infinity)
    if (!Number.isFinite(contact) || !Number.isFinite(direct)) throw new Error('a pair on webrtc without a `peer seen` or `WebRTC connection to` line in the homes\' logs')
    const failed = (await Promise.all(HOMES.map(async h => (await webrtcUpgrades(layout, nodes, h)).failed))).reduce((x, y) => x + y, 0)
    return { path, toDirectMs: direct - contact, failed }
  } finally {
    await stopAll()
  }
}

async function pairs (layout: NetnsLayout, mode: NatMode): Promise<Pair[]> {
  for (const h of HOMES) await netnsCall(layout, 'netns_nat_mode', nsOf(layout, h), mode)
  const out: Pair[] = []
  for (let i = 0; i < PAIRS; i++) out.push(await trial(layout, mode))
  return out
}

const count = (ps: Pair[], path: Pair['path']): number => ps.filter(p => p.path === path).length

async function run (layout: NetnsLayout): Promise<void> {
  setLogLevel('silent')
  const cone = await pairs(layout, 'cone')
  const symmetric = await pairs(layout, 'symmetric')
  const times = cone.flatMap(p => p.toDirectMs ?? [])
  const s = (ms: number): string => (ms / 1000).toFixed(1)
  const retried = cone.filter(p => (p.failed ?? 0) > 0).length
  const timing = times.length > 0 ? `, p50 ${s(percentile(times, 0.5))} s, p99 ${s(percentile(times, 0.99))} s from first contact to direct (${retried} after a failed attempt)` : ''
  const network = layout.impairment.startsWith('netem') ? 'clean network' : 'clean network, no latency (sch_netem missing)'
  const undecided = (ps: Pair[]): string => count(ps, 'undecided') > 0 ? `, ${count(ps, 'undecided')} undecided after ${PAIR_TIMEOUT_MS / 1000} s` : ''
  const [c, y] = [count(cone, 'webrtc'), count(symmetric, 'webrtc')]
  console.log(`bench holepunch: ${c}/${PAIRS} pairs of homes behind port-preserving NATs end direct (webrtc)${timing}${undecided(cone)}, ${network} (behind symmetric NATs ${y}/${PAIRS} direct, ${count(symmetric, 'relayed')} relayed after a failed punch${undecided(symmetric)}, ratio ${y === 0 ? 'n/a' : (c / y).toFixed(2)})`)
}

await netnsBench({ url: import.meta.url, layout: ['--pubs', '1', '--homes', '2'] }, run)
