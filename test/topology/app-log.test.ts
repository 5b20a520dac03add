// The Raft logs of app groups stay bounded (snapshot + compaction), a member far behind
// gets the snapshot in pieces, a restart loads the snapshot and a short tail, and a group
// whose WAL is damaged in the middle is moved aside and rejoined from its members while
// the node's other groups start as usual. Real raft hosts (in-process network with a frame
// limit), real files.
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../src/raft/multi/raft-host.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'
import { MemoryNetwork } from '../../src/raft/transport/memory-transport.js'
import { ConfChangeType, StateRole } from '../../src/raft/types.js'
import { AppGroups, newId } from '../../src/topology/app-groups.js'
import type { HostedApp } from '../../src/topology/app-groups.js'
import type { AppManifest } from '../../src/topology/manifest.js'
import { encodeAppSnapshot } from '../../src/topology/app-snapshot.js'
import type { Logger } from '../../src/util/logger.js'
import { waitFor } from '../support/wait.js'

const NODES = ['n1', 'n2', 'n3']
const SNAPSHOT_ENTRIES = 40
const KEEP = 10

interface Member {
  host: RaftHost
  groups: AppGroups
  lines: string[]
}

function capture (lines: string[]): Logger {
  const push = (level: string) => (m: string): void => { lines.push(`${level} ${m}`) }
  return { info: push('info'), warn: push('warn'), error: push('error'), debug: () => {}, warnOnce: (_k, m) => { lines.push(`warn ${m}`) } }
}

/**
 * a manifest of 30 cells with long code paths (~34 KB, one entry fits a frame here); published
 * twice with other bundles, the state keeps both revisions (~70 KB): larger than a frame
 */
function bigManifest (app: string, bundle = 'b'): AppManifest {
  const cells: AppManifest['cells'] = {}
  for (let i = 0; i < 30; i++) cells[`c${i}`] = { code: `./${'x'.repeat(1000)}${i}.js`, replicas: 1, clones: 1, memory: 16 * 2 ** 20, timeout: 100, mailbox: 10, bundle: bundle.repeat(64) }
  return { app, cells, routes: [] }
}

async function dirBytes (dir: string): Promise<number> {
  let sum = 0
  for (const name of await readdir(dir)) sum += (await stat(join(dir, name))).size
  return sum
}

describe('app group logs: snapshots, compaction, damaged groups', function () {
  this.timeout(180_000)
  let dir: string
  let net: MemoryNetwork
  const members = new Map<string, Member>()

  async function startMember (node: string): Promise<Member> {
    const lines: string[] = []
    let groups: AppGroups | undefined
    const host = new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 25, raft: { maxSizePerMsg: 8 * 1024 }, onUnknownGroup: (g, from, m) => { groups?.joinOnFirstMessage(g, from, m) } })
    groups = new AppGroups({ raft: host, logger: capture(lines) }, { groupsDir: join(dir, node), snapshotEntries: SNAPSHOT_ENTRIES, snapshotKeepEntries: KEEP, walSegmentBytes: 32 * 1024 })
    host.start()
    await groups.start()
    const m = { host, groups, lines }
    members.set(node, m)
    return m
  }

  async function stopMember (node: string): Promise<void> {
    const m = members.get(node)
    if (m === undefined) return
    members.delete(node)
    await m.host.stop()
    await m.groups.stop()
  }

  const hosted = (node: string, app: string): HostedApp | undefined => members.get(node)?.groups.ofApp(app)
  /** the state's canonical text (key order does not count) */
  const canonical = (h: HostedApp | undefined): string => new TextDecoder().decode(encodeAppSnapshot(h?.state))

  /** proposes through whichever member leads (retrying on leader changes) */
  async function ownerOp (app: string, cmd: (at: number) => Parameters<AppGroups['propose']>[1]): Promise<void> {
    const at = Date.now() * 1000 + (++clock)
    for (let attempt = 0; ; attempt++) {
      const node = [...members.keys()].find(n => { const h = hosted(n, app); return h !== undefined && members.get(n)!.host.status(h.group).role === StateRole.Leader }) ?? [...members.keys()][0]
      try {
        const result = await members.get(node)!.groups.propose(hosted(node, app)!, cmd(at))
        if (!result.ok && !/stale request/.test(result.error ?? '')) throw new Error(result.error)
        return
      } catch (err) {
        if (attempt >= 5) throw err
      }
    }
  }
  let clock = 0
  const owner = { owner: 'alice', ownerKey: 'a-key' }

  async function publishAndScale (app: string, times: number): Promise<void> {
    const h = await members.get('n1')!.groups.create(app, NODES)
    await members.get('n1')!.groups.propose(h, { id: newId(), kind: 'publish', ...owner, at: ++clock, manifest: bigManifest(app) })
    await ownerOp(app, at => ({ id: newId(), kind: 'publish', ...owner, at, manifest: bigManifest(app, 'c') }))
    for (let i = 0; i < times; i++) await ownerOp(app, at => ({ id: newId(), kind: 'scale', ...owner, at, cell: 'c0', replicas: 1 + (i % 3) }))
  }

  async function sameStateEverywhere (app: string, nodes = [...members.keys()]): Promise<void> {
    await waitFor(() => {
      const states = nodes.map(n => canonical(hosted(n, app)))
      return !states[0].includes('"state":null') && states.every(s => s === states[0])
    }, { what: `the same state of ${app} on ${nodes.join(', ')}`, timeout: 60_000 }).catch(err => {
      for (const n of nodes) console.log(n, hosted(n, app)?.applied, members.get(n)!.lines.slice(-5))
      throw err
    })
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-app-log-'))
    // 48 KiB frames: the app state travels in pieces
    net = new MemoryNetwork(48 * 1024)
    for (const n of NODES) await startMember(n)
  })
  afterEach(async () => {
    for (const n of [...members.keys()]) await stopMember(n)
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps the log bounded over hundreds of owner operations; a restarted node and a new member catch up by snapshot', async () => {
    await publishAndScale('shop', 300)
    await sameStateEverywhere('shop')
    const leader = members.get('n1')!.host.status(hosted('n1', 'shop')!.group).leader as string
    for (const n of NODES) {
      const h = hosted(n, 'shop')!
      const s = h.storage
      await waitFor(() => s.snapshot().metadata.index > 250, { what: `a recent snapshot on ${n}` })
      const held = s.lastIndex() - s.firstIndex() + 1
      assert.ok(held <= SNAPSHOT_ENTRIES + KEEP + 20, `${n} holds ${held} log entries after ${s.lastIndex()} (bounded by the snapshot interval)`)
      // the compacted segments are gone: the WAL on disk is a few segments, not 300 manifests' worth
      const bytes = await dirBytes(join(dir, n, h.group))
      assert.ok(bytes < 1024 * 1024, `${n}'s group directory holds ${bytes} bytes`)
    }

    // a restart loads the snapshot and replays only the tail
    const before = canonical(hosted('n3', 'shop'))
    await stopMember('n3')
    const n3 = await startMember('n3')
    const restarted = hosted('n3', 'shop')!
    assert.ok(restarted.state !== undefined, 'the state is back from the snapshot before any replay')
    assert.ok(restarted.storage.lastIndex() - restarted.applied <= SNAPSHOT_ENTRIES + KEEP + 20)
    await sameStateEverywhere('shop')
    assert.equal(canonical(hosted('n3', 'shop')), before)
    assert.ok(n3.lines.every(l => !l.startsWith('error')), n3.lines.join('\n'))

    // a new member, far behind (the log before the snapshot is gone), gets the snapshot in pieces
    const n4 = await startMember('n4')
    const group = hosted('n1', 'shop')!.group
    await waitFor(() => {
      const lead = [...members.values()].find(m => m.host.hasGroup(group) && m.host.status(group).role === StateRole.Leader)
      try { lead?.host.proposeConfChange(group, { type: ConfChangeType.AddLearner, node: 'n4' }) } catch {}
      return hosted('n4', 'shop')?.state !== undefined
    }, { what: 'n4 receives the app state', timeout: 60_000, interval: 500 })
    await sameStateEverywhere('shop', ['n1', 'n4'])
    assert.ok(n4.host.stats.snapshotsReassembled >= 1, 'the snapshot came in pieces')
    assert.ok(n4.host.stats.snapshotPiecesReceived > 4)
    assert.ok(members.get(leader)!.host.stats.snapshotPiecesSent > 4)
    assert.ok(n4.lines.some(l => /restored its state from the group's snapshot/.test(l)))
  })

  it('a group whose WAL is damaged in the middle is moved aside with one line; the node starts with its other group and rejoins the damaged one', async () => {
    await publishAndScale('shop', 30)
    await publishAndScale('bank', 5)
    await sameStateEverywhere('shop')
    await sameStateEverywhere('bank')
    const shopGroup = hosted('n3', 'shop')!.group
    const bankBefore = canonical(hosted('n3', 'bank'))
    await stopMember('n3')
    // flip a byte in the middle of shop's WAL on n3 (valid records follow it)
    const gdir = join(dir, 'n3', shopGroup)
    const wal = (await readdir(gdir)).filter(n => n.startsWith('wal-')).sort()
    const path = join(gdir, wal[wal.length - 1])
    const buf = await readFile(path)
    assert.ok(buf.length > 4096, `the WAL segment holds ${buf.length} bytes`)
    buf[Math.floor(buf.length / 2)] ^= 0x10
    await writeFile(path, buf)

    const n3 = await startMember('n3')
    const errors = n3.lines.filter(l => l.startsWith('error'))
    assert.equal(errors.length, 1, n3.lines.join('\n'))
    assert.match(errors[0], new RegExp(`raft group ${shopGroup.replace('~', '~')} is damaged and was moved aside to .*${shopGroup}\\.damaged-`))
    assert.ok(!errors[0].includes('\n'))
    const aside = (await readdir(join(dir, 'n3'))).filter(n => n.startsWith(`${shopGroup}.damaged-`))
    assert.equal(aside.length, 1, 'the damaged directory is kept aside for inspection')
    // the other group is intact, from its own disk
    assert.equal(canonical(hosted('n3', 'bank')), bankBefore)
    // the damaged group rejoins as an empty member and catches up from the others
    assert.equal(n3.host.status(shopGroup).rejoining, true)
    await sameStateEverywhere('shop')
    await waitFor(() => !n3.host.status(shopGroup).rejoining, { what: 'n3 votes again in the shop group once caught up' })
    // and takes part in what follows
    await ownerOp('shop', at => ({ id: newId(), kind: 'scale', ...owner, at, cell: 'c1', replicas: 3 }))
    await waitFor(() => hosted('n3', 'shop')?.state?.manifest.cells.c1.replicas === 3, { what: 'n3 applies a later change' })
    await sameStateEverywhere('shop')
  })

  it('a group whose app snapshot does not decode is treated as damaged too: moved aside and rejoined', async () => {
    await publishAndScale('shop', 60)
    await sameStateEverywhere('shop')
    const group = hosted('n2', 'shop')!.group
    await stopMember('n2')
    // a snapshot record that is sound on disk but holds no app state (a forged or foreign snapshot)
    const storage = await DiskLogStorage.open(join(dir, 'n2', group))
    await storage.createSnapshot(storage.lastIndex(), { voters: NODES, learners: [] }, new TextEncoder().encode('{"format":"stem/app-state","version":1,"state":{"app":"shop"}}'))
    await storage.close()
    const n2 = await startMember('n2')
    const errors = n2.lines.filter(l => l.startsWith('error'))
    assert.equal(errors.length, 1, n2.lines.join('\n'))
    assert.match(errors[0], /is damaged and was moved aside to .*: app snapshot of shop: owner is not a string; rejoining it from its members \(n1, n2, n3\)/)
    await sameStateEverywhere('shop')
  })
})
