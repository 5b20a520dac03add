// App group log benchmark, on real fsync'd disk storage with the real raft host and app
// groups (one single-member group per app, so the figures are the log's own, not the
// network's):
//   app-log-restart  an old app (thousands of owner operations in its log): its WAL size
//                    and the time a restart takes to bring its state back (open the group's
//                    storage, load the snapshot, replay the tail), with snapshots and
//                    compaction as the node runs them; beside the same old app without
//                    compaction (every entry kept and replayed, as before) and a fresh app
//                    (baseline: one publish and one scale).
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../src/raft/multi/raft-host.js'
import { MemoryNetwork } from '../src/raft/transport/memory-transport.js'
import { AppGroups, newId } from '../src/topology/app-groups.js'
import type { AppGroupsInit } from '../src/topology/app-groups.js'
import type { AppManifest } from '../src/topology/manifest.js'
import { encodeAppSnapshot } from '../src/topology/app-snapshot.js'
import { createLogger } from '../src/util/logger.js'
import { waitFor } from '../test/support/wait.js'

const OPS = Number(process.env.BENCH_APP_LOG_OPS ?? 10000)
const owner = { owner: 'alice', ownerKey: 'a-key' }

function manifest (app: string): AppManifest {
  const cells: AppManifest['cells'] = {}
  for (let i = 0; i < 8; i++) cells[`cell${i}`] = { code: `./cells/cell${i}.js`, replicas: 1, clones: 1, memory: 32 * 2 ** 20, timeout: 500, mailbox: 1000, bundle: 'b'.repeat(64) }
  return { app, cells, routes: [{ method: 'GET', path: '/c', cell: 'cell0', handler: 'get' }] }
}

interface Node { host: RaftHost, groups: AppGroups }

function startNode (dir: string, init: Partial<AppGroupsInit>): Node {
  const host = new RaftHost({ transport: new MemoryNetwork().transport('n1') }, { self: 'n1' })
  const groups = new AppGroups({ raft: host, logger: createLogger('bench') }, { groupsDir: dir, ...init })
  host.start()
  return { host, groups }
}

async function stopNode (n: Node): Promise<void> {
  await n.host.stop()
  await n.groups.stop()
}

async function dirBytes (dir: string): Promise<number> {
  let sum = 0
  for (const name of await readdir(dir)) sum += (await stat(join(dir, name))).size
  return sum
}

/** Builds an app with `ops` owner operations, restarts its node; WAL bytes and restart ms. */
async function measure (app: string, ops: number, init: Partial<AppGroupsInit>): Promise<{ walKiB: number, restartMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-app-log-'))
  try {
    let node = startNode(dir, init)
    await node.groups.start()
    const h = await node.groups.create(app, ['n1'])
    let at = 1
    await node.groups.propose(h, { id: newId(), kind: 'publish', ...owner, at: at++, manifest: manifest(app) })
    for (let i = 0; i < ops; i++) await node.groups.propose(h, { id: newId(), kind: 'scale', ...owner, at: at++, cell: `cell${i % 8}`, replicas: 1 + (i % 3) })
    const last = node.host.status(h.group).applied
    const expected = Buffer.from(encodeAppSnapshot(h.state)).toString()
    // let a snapshot under way finish before stopping
    await waitFor(() => !h.compacting, { what: 'snapshot done' })
    await stopNode(node)
    const walKiB = await dirBytes(join(dir, h.group)) / 1024
    const t0 = performance.now()
    node = startNode(dir, init)
    await node.groups.start()
    const back = node.groups.ofApp(app)!
    await waitFor(() => node.host.status(back.group).applied >= last && back.state !== undefined, { what: `${app} restored`, interval: 1 })
    const restartMs = performance.now() - t0
    if (Buffer.from(encodeAppSnapshot(back.state)).toString() !== expected) throw new Error(`${app}: restored state differs`)
    await stopNode(node)
    return { walKiB, restartMs }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const fresh = await measure('fresh', 1, {})
const old = await measure('old', OPS, {})
const uncompacted = await measure('uncompacted', OPS, { snapshotEntries: Infinity, snapshotBytes: Infinity })
const fmt = (r: { walKiB: number, restartMs: number }): string => `${r.restartMs.toFixed(0)} ms, WAL ${r.walKiB.toFixed(0)} KiB`
console.log(`bench app-log-restart: old app (${OPS} owner ops) restarts in ${fmt(old)} with compaction; without compaction ${fmt(uncompacted)} (fresh app: ${fmt(fresh)}, ratio ${(old.restartMs / fresh.restartMs).toFixed(1)})`)
