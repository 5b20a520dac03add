// Issue 6, "leaders talk to other leaders", with real `stem` processes on loopback: three
// nodes contributing 2 cells each, and two apps published at the same moment from two
// different nodes. While they are placed and afterwards, no node ever runs more cells
// than it contributes (every node's status is sampled throughout); when the mesh has room
// for both, both end fully placed; when it has not, the loser reports a pending instance.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StatusResponse } from '../../src/api/types.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, repoRoot, spawnStem, stem, stemJson, stopAll, tempDataDir, type CliResult, type StemProcess } from '../support/stem-process.js'

const CELLS_PER_NODE = 2

function manifest (app: string, replicas: number): string {
  return [
    `app: ${app}`,
    'cells:',
    '  counter:',
    `    code: ./${app}.js`,
    `    replicas: ${replicas}`,
    '    clones: 0',
    '    memory: 16MiB',
    // generous: loading a cell counts against this limit, and a loaded machine is slow
    '    timeout: 1s',
    '    mailbox: 1000',
    ''
  ].join('\n')
}

async function startMesh (): Promise<StemProcess[]> {
  const flags = ['--cells', String(CELLS_PER_NODE)]
  const first = await spawnStem(['start'], await tempDataDir(), flags).ready()
  const invite = await stem(['invite', '--data', first.dataDir])
  assert.equal(invite.code, 0, invite.stderr)
  const others = await Promise.all([0, 1].map(async () => spawnStem(['join', invite.stdout.trim()], await tempDataDir(), flags).ready()))
  const nodes = [first, ...others]
  for (const n of nodes) {
    await waitFor(async () => (await stemJson<{ peers: Array<{ id: string }> }>(['peers', '--data', n.dataDir])).peers.length === 2, { timeout: 60_000, what: 'every node to see the 2 others' })
  }
  return nodes
}

/** Samples every node's running cells through its API until stopped; records the most seen. */
function sampleCells (nodes: StemProcess[]): { stop: () => Promise<Map<string, number>> } {
  const most = new Map<string, number>()
  let running = true
  const loop = (async () => {
    const apis = await Promise.all(nodes.map(async n => ({
      id: n.peerId(),
      url: await apiUrlOf(n.dataDir),
      token: (await readFile(join(n.dataDir, 'api-token'), 'utf8')).trim()
    })))
    while (running) {
      await Promise.all(apis.map(async a => {
        const res = await fetch(`${a.url}/v1/status`, { headers: { authorization: `Bearer ${a.token}` }, signal: AbortSignal.timeout(5000) }).catch(() => undefined)
        if (res?.ok !== true) return
        const status = await res.json() as StatusResponse
        most.set(a.id, Math.max(most.get(a.id) ?? 0, status.cells))
      }))
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return most
    }
  }
}

/** Every app's instances, as one node lists them. */
async function cellsByApp (node: StemProcess): Promise<Map<string, AppCellsListing['cells']>> {
  return new Map((await stemJson<AppCellsListing[]>(['cells', '--data', node.dataDir])).map(a => [a.app, a.cells]))
}

/** Running instances per node. */
function perNode (apps: Map<string, AppCellsListing['cells']>): number[] {
  const counts = new Map<string, number>()
  for (const cells of apps.values()) for (const c of cells) if (c.state === 'transformed') counts.set(c.node, (counts.get(c.node) ?? 0) + 1)
  return [...counts.values()].sort()
}

describe('reservations between app leaders, with real stem processes', function () {
  this.timeout(300_000)
  let dir = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-resv-'))
    // each app its own code: bundles are stored by the hash of their code alone, and two
    // apps with the same code would share one bundle (naming one of the two apps)
    const counter = await readFile(join(repoRoot, 'examples', 'counter', 'counter.js'), 'utf8')
    for (const app of ['alpha', 'beta']) await writeFile(join(dir, `${app}.js`), counter.replace('count = 0', `count = 0\n  app = '${app}'`))
  })
  after(async () => {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  })
  let current: StemProcess[] = []
  afterEach(async function () {
    // a failure is explained by the nodes' logs
    if (this.currentTest?.state === 'failed') for (const n of current) process.stderr.write(`--- node ${n.dataDir}\n${n.stderr.split('\n').slice(-40).join('\n')}\n`)
    await stopAll()
  })

  /** Publishes two apps at the same moment, from the first and the second node. */
  async function publishBoth (nodes: StemProcess[], alpha: number, beta: number, timeout: number): Promise<CliResult[]> {
    await writeFile(join(dir, 'alpha.yaml'), manifest('alpha', alpha))
    await writeFile(join(dir, 'beta.yaml'), manifest('beta', beta))
    return await Promise.all([
      stem(['publish', join(dir, 'alpha.yaml'), '--timeout', String(timeout), '--data', nodes[0].dataDir]),
      stem(['publish', join(dir, 'beta.yaml'), '--timeout', String(timeout), '--data', nodes[1].dataDir])
    ])
  }

  function assertWithinContribution (most: Map<string, number>, nodes: StemProcess[]): void {
    assert.equal(most.size, nodes.length, 'every node was sampled')
    for (const [id, cells] of most) assert.ok(cells <= CELLS_PER_NODE, `node ${id} ran ${cells} cells, more than the ${CELLS_PER_NODE} it contributes`)
  }

  it('two apps needing exactly the mesh\'s room, published at once: both fully placed, no node over its contribution', async () => {
    const nodes = current = await startMesh()
    const sampler = sampleCells(nodes)
    // 4 + 2 instances on 3 × 2 slots: each leader alone would put 2 on the same node
    const [alpha, beta] = await publishBoth(nodes, 4, 2, 90)
    assert.equal(alpha.code, 0, alpha.stderr)
    assert.equal(beta.code, 0, beta.stderr)
    // the third node, which published neither, sees both apps fully placed
    const apps = await waitFor(async () => {
      const listed = await cellsByApp(nodes[2])
      const full = (app: string, replicas: number): boolean => listed.get(app)?.length === replicas && (listed.get(app) ?? []).every(c => c.state === 'transformed')
      return full('alpha', 4) && full('beta', 2) && listed
    }, { timeout: 60_000, what: 'every instance of both apps to run' })
    assert.deepEqual(perNode(apps), [2, 2, 2], 'the two apps fill the mesh exactly')
    // the cells serve
    const r = await stem(['call', 'beta/counter#1', 'increment', '3', '--data', nodes[0].dataDir])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), { count: 3 })
    assertWithinContribution(await sampler.stop(), nodes)
  })

  it('two apps needing more than the mesh\'s room, published at once: the loser reports a pending instance, no node over its contribution', async () => {
    const nodes = current = await startMesh()
    const sampler = sampleCells(nodes)
    // 4 + 3 instances on 3 × 2 slots: one instance cannot be placed
    const results = await publishBoth(nodes, 4, 3, 30)
    const failed = results.map((r, i) => ({ r, app: i === 0 ? 'alpha' : 'beta' })).filter(x => x.r.code !== 0)
    assert.equal(failed.length, 1, `exactly one publish waits in vain: ${results.map(r => r.stderr.trim()).join(' | ')}`)
    assert.match(failed[0].r.stderr, /was published but not placed after \d+ s \(\w+: counter \d\/\d running/)
    const loser = failed[0].app
    const winner = loser === 'alpha' ? 'beta' : 'alpha'
    const apps = await cellsByApp(nodes[2])
    const loserCells = apps.get(loser) ?? []
    const pending = loserCells.filter(c => c.state === 'pending')
    assert.equal(pending.length, 1, `one instance of ${loser} is pending: ${JSON.stringify(loserCells)}`)
    assert.equal(pending[0].node, '')
    assert.ok((apps.get(winner) ?? []).every(c => c.state === 'transformed'))
    assert.deepEqual(perNode(apps), [2, 2, 2], 'the mesh is full, not oversubscribed')
    assertWithinContribution(await sampler.stop(), nodes)
  })
})
