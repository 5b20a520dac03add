// WAN benchmarks on real network namespaces (scripts/netns/run.sh builds them; this file
// re-runs itself inside run.sh when started outside, and is skipped with the reason where
// the machine cannot build namespaces). The bench process itself runs in public host 2;
// every other process in its own host namespace, talking over the namespace internet:
//   wan-ask             sequential remote asks (cell messaging, a counter cell in a cell
//                       host on public host 1) p50/p99 at 50 ms RTT, 1% loss; baseline:
//                       libp2p ping round trips on the same connection, same run.
// and for raft, one raft process per public host:
//   wan-leader-changes  leader changes of an idle-but-ticking 3-node group over a window at
//                       the WAN impairment; baseline: the same window on a clean network.
//                       Any change here is a false failover (no node died).
//   wan-failover        kill -9 the leader; time until a new leader has committed an entry
//                       (p50 over the trials) at the WAN impairment; baseline: the same on a
//                       clean network.
// Latency needs the kernel's sch_netem; where it is missing only loss is emulated and the
// lines say so (see README "Real networks").
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createCellRuntime, type CellRuntime } from '../src/cells/runtime.js'
import { createEd25519Key } from '../src/wire/keys.js'
import { createFrameSigner } from '../src/wire/frame.js'
import { setLogLevel } from '../src/util/logger.js'
import { createCellMessaging, createStaticDirectory, type CellMessaging } from '../src/messaging/index.js'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RaftCluster } from '../test/raft/support/raft-cluster.js'
import { waitFor } from '../test/support/wait.js'
import { netnsCall, pubAddress, type NetnsLayout } from '../test/netns/netns-stem.js'
import { impairmentLabel, netnsBench } from './support/netns-bench.js'
import { DEFAULT_GROUP_RAFT_OPTIONS, DEFAULT_TICK_MS } from '../src/raft/multi/raft-host.js'
import { percentile } from './support/stats.js'

const MESSAGING_FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'messaging', 'fixtures', 'node-process.js')
const RTT_MS = 100
const LOSS_PCT = 2
const WINDOW_MS = 30_000
const TRIALS = 5

async function run (layout: NetnsLayout): Promise<void> {
  setLogLevel('silent')
  await wanAsk(layout)
  await wanRaft(layout)
}

async function wanAsk (layout: NetnsLayout): Promise<void> {
  const ASKS = 300
  await netnsCall(layout, 'netns_impair', '50', '1')
  const remote = spawn('ip', ['netns', 'exec', `${layout.prefix}-pub1`, process.execPath, '--no-node-snapshot', MESSAGING_FIXTURE, 'bench', '0.0.0.0'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const dir = mkdtempSync(join(tmpdir(), 'stem-bench-netns-ask-'))
  let local: { libp2p: Libp2p<{ ping: Ping }>, runtime: CellRuntime, messaging: CellMessaging } | undefined
  try {
    const first = await new Promise<string>((resolve, reject) => {
      remote.once('exit', code => { reject(new Error(`messaging fixture exited ${String(code)}`)) })
      createInterface({ input: remote.stdout! }).once('line', resolve)
    })
    const info = JSON.parse(first) as { id: string, addrs: string[] }
    const key = await createEd25519Key()
    const libp2p = await createLibp2p({
      privateKey: key,
      addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), ping: ping() }
    })
    const runtime = createCellRuntime({ dataDir: join(dir, 'data') })
    runtime.start()
    const directory = createStaticDirectory()
    directory.set('shop/remote#0', info.id)
    const messaging = createCellMessaging({ libp2p, runtime, directory, signer: createFrameSigner(key) }, { mesh: 'bench' })
    await messaging.start()
    local = { libp2p, runtime, messaging }
    const remoteId = peerIdFromString(info.id)
    // it listens on 0.0.0.0 in pub1: every address it lists has the port of its internet one
    const port = /\/tcp\/(\d+)/.exec(info.addrs[0] ?? '')?.[1]
    if (port === undefined) throw new Error(`messaging fixture lists no TCP address: ${first}`)
    await libp2p.peerStore.merge(remoteId, { multiaddrs: [multiaddr(`/ip4/${pubAddress(layout, 1)}/tcp/${port}`)] })
    await libp2p.dial(remoteId, { signal: AbortSignal.timeout(30_000) })
    for (let i = 0; i < 20; i++) await messaging.ask('shop/remote#0', 'get', [])
    const asks: number[] = []
    const pings: number[] = []
    // interleaved, so both see the same moments of the link
    for (let i = 0; i < ASKS; i++) {
      let t = performance.now()
      await messaging.ask('shop/remote#0', 'get', [])
      asks.push(performance.now() - t)
      t = performance.now()
      await libp2p.services.ping.ping(remoteId, { signal: AbortSignal.timeout(30_000) })
      pings.push(performance.now() - t)
    }
    const [a50, a99, p50, p99] = [percentile(asks, 0.5), percentile(asks, 0.99), percentile(pings, 0.5), percentile(pings, 0.99)]
    console.log(`bench wan-ask: p50 ${a50.toFixed(1)} ms, p99 ${a99.toFixed(1)} ms per remote ask at ${impairmentLabel(layout, 50, 1)}, ${ASKS} asks (libp2p ping on the same link p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ratio ${(a50 / p50).toFixed(2)})`)
  } finally {
    if (local !== undefined) {
      await local.messaging.stop()
      await local.runtime.stop()
      await local.libp2p.stop()
    }
    remote.stdin?.end()
    remote.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    await netnsCall(layout, 'netns_impair', '0', '0')
  }
}

async function wanRaft (layout: NetnsLayout): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'stem-bench-netns-'))
  const impaired = async (on: boolean): Promise<void> => { await netnsCall(layout, 'netns_impair', on ? String(RTT_MS) : '0', on ? String(LOSS_PCT) : '0') }
  const label = impairmentLabel(layout, RTT_MS, LOSS_PCT)
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
    const p50 = (xs: number[]): number => percentile(xs, 0.5)
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
    out.push(await c.timeFailover('g', leader, term, 60_000, `wan-failover trial ${t + 1}`))
  }
  return out
}

await netnsBench({ url: import.meta.url, layout: ['--pubs', '3', '--homes', '0'], host: 'pub2' }, run)
