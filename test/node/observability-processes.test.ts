// Issue 8 on real `stem` processes: `stem publish` shows the placement until the instance
// runs and its clone holds it (--json stays as SPEC §6 says), and the dashboard and
// /metrics of each node are fed by the real runtime, messaging, raft and gateway.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import type { DashboardSnapshot } from '../../src/dashboard/types.js'
import { createApiClient } from '../../src/api/client.js'
import { readToken } from '../../src/node/data-dir.js'
import { shortPeerId } from '../../src/util/peer-id-text.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, repoRoot, spawnStem, stem, stemJson, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')

/** the value of one sample of a Prometheus exposition, labels matched exactly; undefined if absent */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const have = (m[2] ?? '').split(/,(?=[a-zA-Z_]\w*=")/).filter(l => l !== '').sort().join(',')
    if (have === want) return Number(m[3])
  }
  return undefined
}

const gatewayOf = (p: StemProcess): string => /^gateway: (\S+)$/m.exec(p.stdout)?.[1] as string

async function metricsOf (p: StemProcess): Promise<string> {
  const res = await fetch(`${await apiUrlOf(p.dataDir)}/metrics`)
  assert.equal(res.status, 200)
  return await res.text()
}

async function dashboardOf (p: StemProcess): Promise<DashboardSnapshot> {
  return await (await fetch(`${await apiUrlOf(p.dataDir)}/dashboard/state`)).json() as DashboardSnapshot
}

describe('publish progress, dashboard and metrics on real stem processes', function () {
  this.timeout(240_000)
  let nodes: StemProcess[] = []
  after(stopAll)

  before(async () => {
    const first = await spawnStem(['start'], await tempDataDir(), ['--gateway', '127.0.0.1:0']).ready()
    const invite = await stem(['invite', '--data', first.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const second = await spawnStem(['join', invite.stdout.trim()], await tempDataDir(), ['--gateway', '127.0.0.1:0']).ready()
    nodes = [first, second]
    for (const n of nodes) {
      await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', n.dataDir])).peers.length === 1, { timeout: 60_000, what: 'each node to see the other' })
    }
  })

  it('stem publish shows the placement until the instance runs and its clone holds it; --json stays as SPEC says', async () => {
    const [first, second] = nodes
    const ids = nodes.map(n => n.peerId())
    const r = await stem(['publish', manifest, '--data', first.dataDir])
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.ok(!r.stdout.includes('\x1b'), 'no spinner or escape codes in a pipe')
    assert.ok(lines.includes('bundling counter/counter from ./counter.js'), r.stdout)
    assert.ok(lines.includes('publishing counter'), r.stdout)
    const placing = lines.filter(l => l.startsWith('placing '))
    assert.ok(placing.length >= 1, r.stdout)
    for (const l of placing) assert.match(l, /^placing counter: counter [01]\/1 running, clones [01]\/[01] ready( \([01] of 1 placed\))?$/)
    assert.equal(placing.at(-1), 'placing counter: counter 1/1 running, clones 1/1 ready', 'the last progress line is the finished placement')
    assert.equal(lines.at(-2), 'published: counter')
    const m = /^ {2}counter\/counter#0 on (\S+) \(transformed\), clones on (\S+)$/.exec(lines.at(-1) ?? '')
    assert.ok(m !== null, r.stdout)
    assert.deepEqual([m[1], m[2]].sort(), ids.map(shortPeerId).sort(), 'instance and clone on the two nodes (short ids: the full ones are in --json)')

    // the node's listing shows the clone holding its copy
    const client = createApiClient(await apiUrlOf(second.dataDir), await readToken(second.dataDir))
    const [held] = (await client.get<AppCellsListing[]>('/v1/cells?app=counter'))[0].cells
    assert.deepEqual(held.clonesReady, held.clones)
    const cells = await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', first.dataDir])
    assert.deepEqual(Object.keys(cells[0].cells[0]).sort(), ['address', 'clones', 'current', 'node', 'revision', 'state'], '`stem cells --json` has the fields of SPEC §6, and the revision each instance runs')

    const again = await stemJson<Record<string, unknown>>(['publish', manifest, '--data', first.dataDir])
    assert.deepEqual(Object.keys(again).sort(), ['app', 'cells', 'changed'])
    assert.equal(again.changed, false)
    assert.deepEqual(again.cells, cells[0].cells)
  })

  it('the dashboard and /metrics show real message counts, rates, mailboxes, raft and gateway figures', async () => {
    const published = await stemJson<{ cells: AppCellsListing['cells'] }>(['publish', manifest, '--data', nodes[0].dataDir])
    const host = nodes.find(n => n.peerId() === published.cells[0].node) as StemProcess
    const other = nodes.find(n => n !== host) as StemProcess

    // asks from the other node's CLI and gateway (remote), and through the host's gateway (local)
    for (let i = 0; i < 3; i++) {
      const r = await stem(['call', 'counter/counter', 'increment', '1', '--data', other.dataDir])
      assert.equal(r.code, 0, r.stderr)
    }
    assert.equal((await fetch(`${gatewayOf(host)}/counter/count`)).status, 200)
    assert.equal((await fetch(`${gatewayOf(other)}/counter/nowhere`)).status, 404)
    // keep the counter busy while the rates are sampled and gossiped
    let calling = true
    const load = (async () => {
      while (calling) await fetch(`${gatewayOf(other)}/counter/count`).then(async r => await r.text()).catch(() => '')
    })()
    try {
      const hostView = await waitFor(async () => {
        const s = await dashboardOf(host)
        return s.cells.some(c => c.address === 'counter/counter#0' && c.rate > 0) && s
      }, { timeout: 30_000, what: 'the host\'s dashboard to show the counter\'s message rate' })
      const app = hostView.apps.find(a => a.app === 'counter')
      assert.ok(app !== undefined && app.leader !== '' && app.term >= 1, JSON.stringify(hostView.apps))
      await waitFor(async () => (await dashboardOf(other)).cells.some(c => c.address === 'counter/counter#0' && c.rate > 0),
        { timeout: 30_000, what: 'the other node\'s dashboard to show the rate of the counter it does not run' })
    } finally {
      calling = false
      await load
    }

    const onHost = await metricsOf(host)
    const onOther = await metricsOf(other)
    const cell = { app: 'counter', cell: 'counter#0' }
    assert.ok((sample(onHost, 'stem_cell_messages_total', cell) ?? 0) >= 4, 'asks delivered to the counter')
    assert.equal(sample(onOther, 'stem_cell_messages_total', cell), undefined, 'the other node runs no instance')
    assert.equal(sample(onHost, 'stem_mailbox_depth', cell), 0, 'an idle mailbox')
    assert.equal(sample(onHost, 'stem_cells', { state: 'transformed' }), 1)
    assert.ok((sample(onHost, 'stem_messages_total', { direction: 'in', kind: 'ask' }) ?? 0) >= 3, 'remote asks received')
    assert.ok((sample(onHost, 'stem_messages_total', { direction: 'out', kind: 'reply' }) ?? 0) >= 3, 'their replies')
    assert.ok((sample(onOther, 'stem_messages_total', { direction: 'out', kind: 'ask' }) ?? 0) >= 3, 'remote asks sent')
    assert.ok((sample(onOther, 'stem_ask_duration_seconds_count', { scope: 'remote' }) ?? 0) >= 3, 'remote ask durations')
    assert.ok((sample(onHost, 'stem_ask_duration_seconds_count', { scope: 'local' }) ?? 0) >= 1, 'the host gateway\'s local ask')
    assert.ok((sample(onHost, 'stem_gateway_requests_total', { app: 'counter', status: '200' }) ?? 0) >= 1)
    assert.ok((sample(onOther, 'stem_gateway_requests_total', { app: '-', status: '404' }) ?? 0) >= 1)
    for (const text of [onHost, onOther]) {
      assert.ok((sample(text, 'stem_raft_term', { app: 'counter' }) ?? 0) >= 1, 'the app group\'s term')
      assert.ok((sample(text, 'stem_raft_commit_index', { app: 'counter' }) ?? 0) >= 1, 'its commit index')
      assert.ok(/^libp2p_\w+/m.test(text), 'libp2p\'s own metrics')
    }
    const leaderChanges = [onHost, onOther].reduce((n, t) => n + (sample(t, 'stem_raft_leader_changes_total', { app: 'counter' }) ?? 0), 0)
    assert.ok(leaderChanges >= 1, 'the app group elected a leader')
  })
})
