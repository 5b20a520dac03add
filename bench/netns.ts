import '../src/shim.js'
// WAN benchmarks on real network namespaces (scripts/netns/run.sh builds them; this file
// re-runs itself inside run.sh when started outside, and is skipped with the reason where
// the machine cannot build namespaces). One raft process per public host, each in its own
// namespace, talking over the namespace internet:
//   wan-leader-changes  leader changes of an idle-but-ticking 3-node group over a window at
//                       the WAN impairment; baseline: the same window on a clean network.
//                       Any change here is a false failover (no node died).
//   wan-failover        kill -9 the leader; time until a new leader has committed an entry
//                       (p50 over the trials) at the WAN impairment; baseline: the same on a
//                       clean network.
// Latency needs the kernel's sch_netem; where it is missing only loss is emulated and the
// lines say so (see README "Real networks").
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RaftCluster } from '../test/raft/support/raft-cluster.js'
import { waitFor } from '../test/support/wait.js'
import { netnsCall, netnsLayout, type NetnsLayout } from '../test/netns/netns-stem.js'
import { DEFAULT_GROUP_RAFT_OPTIONS, DEFAULT_TICK_MS } from '../src/raft/multi/raft-host.js'

const RTT_MS = 100
const LOSS_PCT = 2
const WINDOW_MS = 30_000
const TRIALS = 5

const layout = netnsLayout()
if (typeof layout === 'string') {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
  if (process.getuid?.() !== 0) {
    console.log('bench netns: skipped: needs root for ip netns')
  } else {
    // run.sh prints its own skip reason and exits 0 where namespaces are unavailable
    const r = spawnSync('bash', [join(root, 'scripts/netns/run.sh'), '--pubs', '3', '--homes', '0', '--', process.execPath, '--no-node-snapshot', fileURLToPath(import.meta.url)], { stdio: 'inherit' })
    process.exitCode = r.status ?? 1
  }
} else {
  await run(layout)
}

async function run (layout: NetnsLayout): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'stem-bench-netns-'))
  const impaired = async (on: boolean): Promise<void> => { await netnsCall(layout, 'netns_impair', on ? String(RTT_MS) : '0', on ? String(LOSS_PCT) : '0') }
  const label = layout.impairment.startsWith('netem') ? `${RTT_MS} ms RTT, ${LOSS_PCT}% loss` : `${LOSS_PCT}% loss, no latency (sch_netem missing)`
  const cluster = new RaftCluster({
    root,
    size: 3,
    groups: ['g'],
    tickMs: DEFAULT_TICK_MS,
    raft: DEFAULT_GROUP_RAFT_OPTIONS,
    reportApplied: true,
    proposeOnLeader: true,
    namespaces: [1, 2, 3].map(i => `${layout.prefix}-pub${i}`)
  })
  try {
    await cluster.start()
    const changes = async (): Promise<number> => {
      const leader = await settled(cluster)
      const term = leader.roles.get('g')!.term
      await new Promise(resolve => setTimeout(resolve, WINDOW_MS))
      return Math.max(0, ...cluster.nodes.map(n => n.roles.get('g')?.term ?? 0)) - term
    }
    await impaired(false)
    const cleanChanges = await changes()
    await impaired(true)
    const wanChanges = await changes()
    console.log(`bench wan-leader-changes: ${wanChanges} leader changes in ${WINDOW_MS / 1000} s at ${label} (${cleanChanges} on a clean network, ratio ${cleanChanges === 0 ? 'n/a' : (wanChanges / cleanChanges).toFixed(2)})`)

    await impaired(false)
    const clean = await failovers(cluster, TRIALS)
    await impaired(true)
    const wan = await failovers(cluster, TRIALS)
    const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    console.log(`bench wan-failover: p50 ${p50(wan).toFixed(0)} ms from kill -9 of the raft leader to a commit by the new one at ${label}, ${TRIALS} trials (${p50(clean).toFixed(0)} ms on a clean network, ratio ${(p50(wan) / p50(clean)).toFixed(2)})`)
  } finally {
    await cluster.stop()
    await rm(root, { recursive: true, force: true })
  }
}

/** the leader once every node has applied its election entry */
async function settled (c: RaftCluster): Promise<NonNullable<ReturnType<RaftCluster['leader']>>> {
  return waitFor(() => {
    const leader = c.leader('g')
    if (leader === undefined) return false
    const term = leader.roles.get('g')!.term
    return c.nodes.every(n => n.alive && n.applied.get('g')?.includes(`elected ${term}`)) && leader
  }, { what: 'a settled group', timeout: 60_000 })
}

async function failovers (c: RaftCluster, trials: number): Promise<number[]> {
  const out: number[] = []
  for (let t = 0; t < trials; t++) {
    const leader = await settled(c)
    const term = leader.roles.get('g')!.term
    const committed = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { off(); reject(new Error(`wan-failover: no commit by a new leader within 60 s (trial ${t + 1})`)) }, 60_000)
      const off = c.onEvent((node, e) => {
        if (node === leader || e.event !== 'applied' || typeof e.data !== 'string' || !e.data.startsWith('elected ')) return
        if (Number(e.data.slice(8)) <= term) return
        off()
        clearTimeout(timer)
        resolve(performance.now())
      })
    })
    const killedAt = performance.now()
    c.kill(leader)
    out.push(await committed - killedAt)
    leader.applied.set('g', [])
    await c.spawnNode(leader)
    c.introduceAll()
  }
  return out
}
