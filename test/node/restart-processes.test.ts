// Issue 14 end to end with real `stem` processes: every acknowledged state survives a
// restart of one node or of the whole mesh — graceful (SIGINT) or kill -9 — and a restart
// with one node of three missing for good. Adds go through the gateway; after each
// restart every acknowledged add is in the count, and the count never exceeds the adds
// attempted (nothing applied twice, nothing invented).
import assert from 'node:assert/strict'
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { DATA_FORMAT } from '../../src/node/data-dir.js'
import { apiClient } from '../../src/cli/context.js'
import { signedByOwner } from '../../src/cli/owner.js'
import { waitFor } from '../support/wait.js'
import { repoRoot, stem, stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { gatewayOf, restartNode, startMesh, stopNodes, type MeshNode } from '../../scripts/support/stem-mesh.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')

/** adds made through a gateway: attempted (sent) and acknowledged (answered 200) */
class Adds {
  attempted = 0
  acked = 0

  async add (gateway: string, n: number): Promise<void> {
    // a node just restarted may not know the app's routes yet (404, nothing sent to the cell)
    await this.check(gateway, 'the restart, on this gateway')
    for (let i = 0; i < n; i++) {
      this.attempted++
      const res = await fetch(`${gateway}/counter/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 1 }), signal: AbortSignal.timeout(15_000) })
      if (res.status !== 200) throw new Error(`POST /counter/count answered ${res.status}: ${await res.text()}`)
      const body = await res.json() as { count: number }
      this.acked++
      assert.ok(body.count >= this.acked && body.count <= this.attempted, `count ${body.count} after ${this.acked} acknowledged of ${this.attempted} attempted adds`)
    }
  }

  /** Waits until the app answers again, then checks the count against what was acknowledged. */
  async check (gateway: string, what: string): Promise<number> {
    const count = await waitFor(async () => {
      const res = await fetch(`${gateway}/counter/count`, { signal: AbortSignal.timeout(5000) })
      return res.status === 200 && (await res.json() as { count: number }).count
    }, { timeout: 120_000, what: `the counter to answer after ${what}` })
    assert.ok(count >= this.acked, `after ${what}: count ${count}, but ${this.acked} adds were acknowledged (state lost)`)
    assert.ok(count <= this.attempted, `after ${what}: count ${count} exceeds the ${this.attempted} adds attempted`)
    return count
  }
}

describe('durable by default: restarts with real stem processes', function () {
  this.timeout(900_000)
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('one node: a graceful restart and a kill -9 restart keep every acknowledged add; start flags are remembered; a damaged state file is named and its instance shown lost; a newer data dir is refused', async () => {
    const [node] = await startMesh(1, ['--mesh', 'one', '--cpu', '3', '--cells', '7'])
    await stemJson(['publish', manifest, '--data', node.dataDir])
    const adds = new Adds()
    await adds.add(gatewayOf(node.process), 5)

    await stopNodes([node], 'SIGINT')
    assert.equal(node.process.exitCode, 0, node.process.stderr)
    await restartNode(node)
    assert.equal(await adds.check(gatewayOf(node.process), 'a graceful restart'), 5)

    await adds.add(gatewayOf(node.process), 3)
    await stopNodes([node], 'SIGKILL')
    await restartNode(node)
    assert.equal(await adds.check(gatewayOf(node.process), 'a kill -9 restart'), 8)
    // --cpu/--cells of the first start hold after restarts without them
    const status = await stemJson<{ capacity: { cpu: number, cells: number } }>(['status', '--data', node.dataDir])
    assert.deepEqual([status.capacity.cpu, status.capacity.cells], [3, 7])

    // a truncated state file: one line naming it, moved aside, the node starts anyway
    await stopNodes([node], 'SIGKILL')
    const file = join(node.dataDir, 'cells', `${encodeURIComponent('counter/counter#0')}.json`)
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.slice(0, text.length - 10))
    await restartNode(node)
    await waitFor(() => node.process.stdout.includes(`${file} is damaged (not JSON (truncated?)): moved to`) || node.process.stderr.includes(`${file} is damaged (not JSON (truncated?)): moved to`), { what: 'the line naming the damaged file' })
    assert.ok((await readdir(join(node.dataDir, 'cells'))).includes(`${encodeURIComponent('counter/counter#0')}.json.corrupt`))
    // its only copy is gone: shown lost and said so, never served blank
    await waitFor(async () => (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', node.dataDir]))[0]?.cells[0]?.state === 'lost', { timeout: 60_000, what: 'the counter to be shown lost' })
    assert.match(node.process.stdout + node.process.stderr, /counter\/counter#0 is lost: no usable copy of its state was found \(the copy on \S+ is damaged on disk\)/)
    assert.notEqual((await fetch(`${gatewayOf(node.process)}/counter/count`)).status, 200)

    // a data dir from a newer version: refused with one line naming the file
    await stopNodes([node], 'SIGINT')
    await writeFile(join(node.dataDir, 'stem-data.json'), '{"format":99}\n')
    const refused = await stem(['start', '--data', node.dataDir, '--listen', node.listen, '--api', '127.0.0.1:0'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr.trim(), new RegExp(`stem-data\\.json: this data dir was written by a newer version of stem \\(format 99; this one reads format ${DATA_FORMAT}\\)`))
  })

  it('three nodes: graceful whole-mesh restart, kill -9 of all three, then only two of three back', async () => {
    const nodes = await startMesh(3)
    const published = await stemJson<{ cells: AppCellsListing['cells'] }>(['publish', manifest, '--data', nodes[0].dataDir])
    assert.equal(published.cells[0].clones.length, 1)
    const adds = new Adds()
    await adds.add(gatewayOf(nodes[1].process), 10)

    await stopNodes(nodes, 'SIGINT')
    for (const n of nodes) await restartNode(n)
    await adds.check(gatewayOf(nodes[2].process), 'a graceful restart of the whole mesh')

    await adds.add(gatewayOf(nodes[0].process), 10)
    await stopNodes(nodes, 'SIGKILL')
    for (const n of nodes) await restartNode(n)
    await adds.check(gatewayOf(nodes[1].process), 'kill -9 of every node')

    // the node running the primary stays down (the first node is the others' bootstrap: if
    // it runs the primary, its clone's node stays down instead)
    await adds.add(gatewayOf(nodes[2].process), 10)
    const cells = await waitFor(async () => {
      const c = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', nodes[0].dataDir]))[0]?.cells[0]
      return c?.state === 'transformed' && c.clones.length > 0 && c
    }, { timeout: 60_000, what: 'the counter and its clone to be placed' })
    const ids = nodes.map(n => n.process.peerId())
    const down = ids.indexOf(cells.node) > 0 ? ids.indexOf(cells.node) : ids.indexOf(cells.clones[0])
    assert.ok(down > 0)
    await stopNodes(nodes, 'SIGKILL')
    const back: MeshNode[] = nodes.filter((_, i) => i !== down)
    for (const n of back) await restartNode(n)
    await adds.check(gatewayOf(back[1].process), `kill -9 of every node, with ${ids[down]} (${cells.node === ids[down] ? 'the primary' : 'the clone'}) not coming back`)
    await adds.add(gatewayOf(back[0].process), 3)
  })

  it('kill -9 of the clone\'s node for good, then of the primary\'s: the clone placed since takes over with every acknowledged add, without waiting for the dead one', async () => {
    const nodes = await startMesh(5)
    await stemJson(['publish', manifest, '--data', nodes[0].dataDir])
    const adds = new Adds()
    const ids = nodes.map(n => n.process.peerId())
    const placed = async (via: MeshNode): Promise<AppCellsListing['cells'][number] | undefined> => (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', via.dataDir]))[0]?.cells[0]
    const first = await waitFor(async () => { const c = await placed(nodes[0]); return c?.state === 'transformed' && c.clones.length === 1 && c }, { timeout: 60_000, what: 'the counter and its clone to be placed' })
    const primary = ids.indexOf(first.node)
    const clone = ids.indexOf(first.clones[0])
    const live = nodes.filter((_, i) => i !== clone)
    const via = nodes.find((_, i) => i !== primary && i !== clone) as MeshNode
    await adds.add(gatewayOf(via.process), 5)
    await stopNodes([nodes[clone]], 'SIGKILL')
    // the node's own listing says when the new clone holds the instance (`stem cells --json` leaves that out)
    const client = await apiClient({ data: via.dataDir })
    const moved = await waitFor(async () => {
      const c = (await client.get<AppCellsListing[]>('/v1/cells?app=counter'))[0]?.cells[0]
      return c?.state === 'transformed' && c.clones.length === 1 && c.clones[0] !== ids[clone] && c.clonesReady.includes(c.clones[0]) && c
    }, { timeout: 60_000, what: 'a new clone placed and holding the counter' })
    // replies wait for the clone: these adds are acknowledged only once the new clone holds them
    await adds.add(gatewayOf(via.process), 5)
    // the app's group no longer counts the dead node (else the next kill could leave it without a majority)
    await waitFor(async () => !(await stemJson<Array<{ app: string, members: string[] }>>(['apps', '--data', via.dataDir, '--json'])).find(a => a.app === 'counter')?.members.includes(ids[clone]), { timeout: 90_000, what: 'the dead clone\'s node to leave the app\'s group' })
    await adds.add(gatewayOf(via.process), 5)
    const survivors = live.filter(n => n !== nodes[primary])
    const gateway = gatewayOf(survivors.find(n => n.process.peerId() !== moved.clones[0])?.process ?? survivors[0].process)
    await stopNodes([nodes[primary]], 'SIGKILL')
    assert.equal(await adds.check(gateway, 'kill -9 of the primary\'s node after the clone\'s'), 15)
    const logs = survivors.map(n => n.process.stdout + n.process.stderr).join('\n')
    assert.doesNotMatch(logs, new RegExp(`counter/counter#0 is recovering: waiting for [^\\n]*${ids[clone]}`), 'no wait for the dead clone')
    assert.doesNotMatch(logs, /counter\/counter#0 is lost/)
  })

  it('clones: 0 and its node down: recovering, then lost — never served blank — and back with its state when the node returns', async () => {
    const away = await onlyCopyAway()
    try {
      const { nodes, back, holder, adds } = away
      assert.ok(away.states.has('recovering'), `shown recovering before lost (seen: ${[...away.states].join(', ')})`)
      assert.ok(back.some(n => /counter\/counter#0 is lost: no usable copy of its state was found \(\S+ did not answer\); it is not served until a copy comes back, or until `stem restart counter\/counter --accept-loss` starts it from blank/.test(n.process.stdout + n.process.stderr)), 'the leader says it is lost, and what the owner may do')
      // and so does `stem cells`, through either node
      for (const n of back) {
        const listed = await waitFor(async () => {
          const c = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', n.dataDir]))[0]?.cells[0]
          return c?.state === 'lost' && c.reason !== undefined && c.reason
        }, { timeout: 30_000, what: 'stem cells to say why the counter is lost' })
        assert.match(listed, /^no usable copy of its state was found \(\S+ did not answer\); .*--accept-loss` starts it from blank/)
      }
      const text = await stem(['cells', 'counter', '--data', back[0].dataDir])
      assert.match(text.stdout, /counter\/counter#0 .* lost: no usable copy of its state was found/)
      // the node holding the copy returns: the instance comes back with every acknowledged add
      await restartNode(nodes[holder], ['--bootstrap', `${back[0].listen}/p2p/${back[0].process.peerId()}`])
      assert.equal(await adds.check(gatewayOf(back[0].process), 'the node holding the only copy came back'), 6)
    } finally {
      await rm(away.dir, { recursive: true, force: true })
    }
  })

  it('clones: 0 and its node away for good: the owner accepts the loss through a member that does not lead, and it starts blank; the old copy, back, never answers', async () => {
    const away = await onlyCopyAway()
    try {
      const { nodes, back, holder } = away
      const apps = await stemJson<Array<{ app: string, leader: string }>>(['apps', '--data', back[0].dataDir, '--json'])
      const follower = back.find(n => n.process.peerId() !== apps.find(a => a.app === 'counter')?.leader) as MeshNode
      // the owner's key, as `stem owner export/import` would carry it to that node's machine
      if (follower !== nodes[0]) await copyFile(join(nodes[0].dataDir, 'owner.key'), join(follower.dataDir, 'owner.key'))
      const accepted = await stem(['restart', 'counter', '--accept-loss', '--data', follower.dataDir])
      assert.equal(accepted.code, 0, accepted.stderr)
      assert.equal(accepted.stdout.trim(), 'restarted the failed instances of counter and started the lost ones from the newest copy found')
      const count = await waitFor(async () => {
        const res = await fetch(`${gatewayOf(follower.process)}/counter/count`, { signal: AbortSignal.timeout(5000) })
        return res.status === 200 && (await res.json() as { count: number }).count
      }, { timeout: 60_000, what: 'the counter to answer once its owner accepted the loss' })
      assert.equal(count, 0, 'started blank: no copy was found')
      assert.ok(back.some(n => /counter\/counter#0 started on \S+ \(blank\), its owner having accepted the loss/.test(n.process.stdout + n.process.stderr)), 'the leader says why it started')
      await fetch(`${gatewayOf(follower.process)}/counter/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 1 }), signal: AbortSignal.timeout(15_000) })
      // the node with the old copy returns: the new primary keeps serving, its old copy never answers
      await restartNode(nodes[holder], ['--bootstrap', `${back[0].listen}/p2p/${back[0].process.peerId()}`])
      await waitFor(async () => (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', nodes[holder].dataDir]))[0]?.cells[0]?.state === 'transformed', { timeout: 60_000, what: 'the returned node to know the counter' })
      for (const n of nodes) {
        const res = await fetch(`${gatewayOf(n.process)}/counter/count`, { signal: AbortSignal.timeout(15_000) })
        assert.equal(res.status, 200)
        assert.equal((await res.json() as { count: number }).count, 1, `through ${n.process.peerId()}`)
      }
      // nothing lost to accept any more
      const again = await stem(['restart', 'counter', '--accept-loss', '--data', follower.dataDir])
      assert.equal(again.stdout.trim(), 'no failed or lost instance of counter')
      // a signed accept-loss is carried out once: the same request again is refused by the leader
      const signed = await signedByOwner({ data: follower.dataDir }, { op: 'restart', app: 'counter', at: Date.now(), acceptLoss: true })
      const client = await apiClient({ data: follower.dataDir })
      assert.deepEqual(await client.post('/v1/owner', { signed }), { changed: false })
      await assert.rejects(client.post('/v1/owner', { signed }), /owner request refused: replayed/)
    } finally {
      await rm(away.dir, { recursive: true, force: true })
    }
  })
})

/**
 * A counter with `clones: 0`, 6 adds acknowledged, then kill -9 of every node and only the
 * two that do not hold its copy back: it is shown `lost` (having been `recovering`), and
 * never served meanwhile.
 */
async function onlyCopyAway (): Promise<{ dir: string, nodes: MeshNode[], back: MeshNode[], holder: number, adds: Adds, states: Set<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-alone-'))
  await copyFile(join(repoRoot, 'examples', 'counter', 'counter.js'), join(dir, 'counter.js'))
  await writeFile(join(dir, 'app.yaml'), (await readFile(manifest, 'utf8')).replace('clones: 1', 'clones: 0'))
  const nodes = await startMesh(3)
  await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
  const adds = new Adds()
  await adds.add(gatewayOf(nodes[1].process), 6)
  // every member of the app's group (all three here) keeps the app's code: with the only
  // primary away, an accepted loss starts it blank on another node from its own store
  for (const n of nodes) await waitFor(async () => (await readdir(join(n.dataDir, 'bundles')).catch(() => [])).some(f => f.endsWith('.bundle')), { timeout: 30_000, what: `the counter's bundle in ${n.dataDir}` })
  const ids = nodes.map(n => n.process.peerId())
  const cell = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', nodes[0].dataDir]))[0].cells[0]
  const holder = ids.indexOf(cell.node)
  await stopNodes(nodes, 'SIGKILL')
  // the two others come back, each told where the other one is
  const back = nodes.filter((_, i) => i !== holder)
  for (const [i, n] of back.entries()) {
    const other = back[1 - i]
    await restartNode(n, i === 0 ? [] : ['--bootstrap', `${other.listen}/p2p/${other.process.peerId()}`])
  }
  const states = new Set<string>()
  const state = async (): Promise<string | undefined> => (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', back[0].dataDir]))[0]?.cells[0]?.state
  const served = async (): Promise<void> => {
    const res = await fetch(`${gatewayOf(back[0].process)}/counter/count`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
    if (res?.status === 200) assert.fail(`served while its only copy is away: ${await res.text()}`)
  }
  await waitFor(async () => {
    const s = await state()
    if (s !== undefined) states.add(s)
    await served()
    return s === 'lost'
  }, { timeout: 120_000, what: 'the counter to be shown lost' })
  return { dir, nodes, back, holder, adds, states }
}
