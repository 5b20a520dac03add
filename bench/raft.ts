// Raft benchmarks, all over real libp2p on loopback with one process per node and real
// fsync'd disk storage:
//   raft-failover     kill -9 the leader of a 3-node group; time until a new leader has
//                     committed an entry (p50/p99 over 20 trials); baseline: the configured
//                     randomized election timeout alone (its median) — the wait before anyone
//                     may even start an election.
//   raft-commit       entries/s committed by a 3-node group (fsync on every node, batching
//                     on); baseline: raw fdatasync/s of the same disk.
//   raft-idle-groups  CPU and bytes/s (all 3 processes together) of 1,000 idle groups across
//                     3 nodes; baseline: 1 group. Idle groups quiesce: no ticks, no heartbeats,
//                     only one liveness beacon per peer pair now and then.
import { mkdtemp, rm, open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftCluster } from '../test/raft/support/raft-cluster.js'
import type { ClusterOptions, NodeEvent } from '../test/raft/support/raft-cluster.js'
import { waitFor } from '../test/support/wait.js'
import { DEFAULT_GROUP_RAFT_OPTIONS, DEFAULT_TICK_MS } from '../src/raft/multi/raft-host.js'
import { percentile } from './support/stats.js'

// the host's defaults
const TICK_MS = DEFAULT_TICK_MS
const RAFT = DEFAULT_GROUP_RAFT_OPTIONS
const ELECTION_TICK = RAFT.electionTick ?? 10

async function withCluster<T> (options: Omit<ClusterOptions, 'root'>, fn: (c: RaftCluster) => Promise<T>): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), 'stem-bench-raft-'))
  const cluster = new RaftCluster({ ...options, root })
  try {
    await cluster.start()
    return await fn(cluster)
  } finally {
    await cluster.stop()
    await rm(root, { recursive: true, force: true })
  }
}

async function failover (trials: number): Promise<void> {
  const times = await withCluster({ size: 3, groups: ['g'], tickMs: TICK_MS, raft: RAFT, reportApplied: true, proposeOnLeader: true }, async (c) => {
    const out: number[] = []
    for (let t = 0; t < trials; t++) {
      const leader = await waitFor(() => c.leader('g'), { what: 'a leader', timeout: 30_000 })
      const term = leader.roles.get('g')!.term
      // everyone holds the leader's election entry: the group is settled
      await waitFor(() => c.nodes.every(n => n.alive && n.applied.get('g')?.includes(`elected ${term}`)), { what: 'settled group', timeout: 30_000 })
      out.push(await c.timeFailover('g', leader, term, 30_000, `raft-failover trial ${t + 1}`))
    }
    return out
  })
  times.sort((a, b) => a - b)
  const p50 = percentile(times, 0.5)
  const p99 = percentile(times, 0.99)
  // the randomized election timeout is uniform in [electionTick, 2*electionTick) ticks
  const timeoutMedian = 1.5 * ELECTION_TICK * TICK_MS
  console.log(`bench raft-failover: p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms from kill -9 to a commit by the new leader, ${times.length} trials (election timeout alone ${timeoutMedian.toFixed(0)} ms median, ratio ${(p50 / timeoutMedian).toFixed(2)})`)
}

/** fdatasyncs per second of small appends to one file in the bench's temp dir. */
async function rawFsyncRate (ms: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-fsync-'))
  const handle = await open(join(dir, 'f'), 'w')
  const buf = Buffer.alloc(128, 1)
  let n = 0
  let pos = 0
  const start = performance.now()
  try {
    while (performance.now() - start < ms) {
      await handle.write(buf, 0, buf.length, pos)
      pos += buf.length
      await handle.datasync()
      n++
    }
  } finally {
    await handle.close()
    await rm(dir, { recursive: true, force: true })
  }
  return n / ((performance.now() - start) / 1000)
}

async function commit (): Promise<void> {
  const fsyncs = await rawFsyncRate(2000)
  const execArgv = process.env.STEM_BENCH_NODE_FLAGS?.split(' ').filter(Boolean)
  const { entries, ms } = await withCluster({ size: 3, groups: ['g'], tickMs: TICK_MS, raft: RAFT, reportApplied: false, execArgv }, async (c) => {
    /** runs a load on the current leader; a leadership change under load (a starved machine) fails that attempt */
    const run = async (count: number): Promise<NodeEvent> => {
      for (let attempt = 1; ; attempt++) {
        const leader = await waitFor(() => c.leader('g'), { what: 'a leader', timeout: 30_000 })
        const result = c.next(leader, ['load-done', 'error'], 120_000)
        c.send(leader, { cmd: 'load', group: 'g', count, size: 100 })
        const r = await result
        if (r.event === 'load-done') return r
        if (attempt === 3) throw new Error(`raft-commit: load failed 3 times, last: ${String(r.message)}`)
      }
    }
    await run(20_000) // warm-up: connections, JIT
    const r = await run(200_000)
    return { entries: r.entries as number, ms: r.ms as number }
  })
  const rate = entries / (ms / 1000)
  console.log(`bench raft-commit: ${Math.round(rate)} entries/s committed by 3 nodes with fsync, 100-byte entries (raw fdatasync ${Math.round(fsyncs)}/s on the same disk, ratio ${(rate / fsyncs).toFixed(1)})`)
}

interface IdleCost { cpuPercent: number, bytesPerSec: number, quiet: number }

async function idle (groups: number, windowMs: number): Promise<IdleCost> {
  const names = Array.from({ length: groups }, (_, i) => `app-${i}`)
  return withCluster({ size: 3, groups: names, tickMs: TICK_MS, raft: RAFT, reportApplied: false }, async (c) => {
    await waitFor(() => names.every(g => c.leader(g) !== undefined), { what: `leaders in ${groups} groups`, timeout: 120_000, interval: 200 })
    // let elections, bootstrap appends and catch-up finish
    const settle = async (): Promise<number> => {
      const s = await Promise.all(c.nodes.map(async n => c.status(n, true)))
      return s.reduce((sum, st) => sum + (st.host as { readiesProcessed: number }).readiesProcessed, 0)
    }
    await settle()
    await new Promise(resolve => setTimeout(resolve, 2000))
    const before = await Promise.all(c.nodes.map(async n => c.status(n, true)))
    const t0 = performance.now()
    await new Promise(resolve => setTimeout(resolve, windowMs))
    const after = await Promise.all(c.nodes.map(async n => c.status(n, true)))
    const secs = (performance.now() - t0) / 1000
    let cpuMicros = 0
    let bytes = 0
    for (let i = 0; i < c.nodes.length; i++) {
      const a = after[i].cpu as { user: number, system: number }
      const b = before[i].cpu as { user: number, system: number }
      cpuMicros += (a.user + a.system) - (b.user + b.system)
      bytes += (after[i].transport as { bytesSent: number }).bytesSent - (before[i].transport as { bytesSent: number }).bytesSent
    }
    // groups quiet on every node at the end of the window
    const quiet = Math.min(...after.map(st => st.quiesced as number))
    return { cpuPercent: cpuMicros / 1e6 / secs * 100, bytesPerSec: bytes / secs, quiet }
  })
}

async function idleGroups (): Promise<void> {
  const one = await idle(1, 5000)
  const many = await idle(1000, 5000)
  const fmt = (x: IdleCost): string => `${x.cpuPercent.toFixed(1)}% CPU, ${(x.bytesPerSec / 1024).toFixed(1)} KiB/s`
  console.log(`bench raft-idle-groups: 1000 idle groups on 3 nodes (${many.quiet} quiesced): ${fmt(many)} (1 group: ${fmt(one)}, ratio ${(many.cpuPercent / one.cpuPercent).toFixed(1)} CPU, ${(many.bytesPerSec / one.bytesPerSec).toFixed(1)} bytes)`)
}

const only = process.argv.slice(2)
const want = (name: string): boolean => only.length === 0 || only.includes(name)
if (want('failover')) await failover(20)
if (want('commit')) await commit()
if (want('idle')) await idleGroups()
