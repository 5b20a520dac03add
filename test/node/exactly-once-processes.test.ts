// Issue 14, "retries are exactly-once across failover", with real `stem` processes: an ask
// is answered, then the node of its primary is killed (-9) — as if the reply had been lost
// on the way — and the caller retries with the same message id. The retry reaches the
// new primary (the promoted clone), or the same node after a restart from disk, and gets
// the recorded result: the counter moved once.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { connect, newMessageId } from '../../src/messaging/sdk.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, repoRoot, stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { restartNode, startMesh, stopNodes, type MeshNode } from '../../scripts/support/stem-mesh.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')
const ADDRESS = 'counter/counter'

interface Counter {
  increment: (by: number) => { count: number }
  get: () => { count: number }
}

/** the counter through `node`'s control API (POST /v1/call), each call with `messageId` if given */
async function counterVia (node: MeshNode, messageId?: string): Promise<Counter> {
  const token = (await readFile(join(node.dataDir, 'api-token'), 'utf8')).trim()
  const cell = connect({ url: await apiUrlOf(node.dataDir), token }).cell<Counter>(ADDRESS)
  return (messageId === undefined ? cell : cell.$with({ messageId })) as unknown as Counter
}

async function placement (node: MeshNode): Promise<AppCellsListing['cells'][number] | undefined> {
  return (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', node.dataDir]))[0]?.cells[0]
}

describe('exactly-once retries across failover and restart: real stem processes', function () {
  this.timeout(600_000)
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('a retry with the same message id after the primary\'s node is killed (-9) gets the recorded result from the promoted clone: applied once', async () => {
    const nodes = await startMesh(3)
    await stemJson(['publish', manifest, '--data', nodes[0].dataDir])
    const placed = await waitFor(async () => {
      const c = await placement(nodes[0])
      return c?.state === 'transformed' && c.clones.length > 0 && c
    }, { timeout: 60_000, what: 'the counter and its clone to be placed' })
    const ids = nodes.map(n => n.process.peerId())
    // the caller is a node that holds neither the primary nor the clone: its asks cross the mesh
    const caller = nodes.find((_, i) => ids[i] !== placed.node && ids[i] !== placed.clones[0]) as MeshNode
    const primary = nodes[ids.indexOf(placed.node)]

    const once = newMessageId()
    assert.deepEqual(await (await counterVia(caller, once)).increment(1), { count: 1 })
    assert.deepEqual(await (await counterVia(caller)).increment(10), { count: 11 })
    await stopNodes([primary], 'SIGKILL')
    const moved = await waitFor(async () => {
      const c = await placement(caller)
      return c?.state === 'transformed' && c.node !== placed.node && c
    }, { timeout: 120_000, what: 'the counter to fail over' })
    assert.equal(moved.node, placed.clones[0], 'the clone was promoted')

    // the retry of the first ask (its reply "lost"): the recorded result, not a second add
    assert.deepEqual(await (await counterVia(caller, once)).increment(1), { count: 1 })
    assert.deepEqual(await (await counterVia(caller)).get(), { count: 11 })
    // a new id runs
    assert.deepEqual(await (await counterVia(caller)).increment(1), { count: 12 })
  })

  it('a retry with the same message id after a kill -9 and restart of the only node (durability disk, clones 0) gets the recorded result: applied once', async () => {
    const [node] = await startMesh(1, ['--mesh', 'one'])
    await stemJson(['publish', manifest, '--data', node.dataDir])
    const once = newMessageId()
    assert.deepEqual(await (await counterVia(node, once)).increment(5), { count: 5 })
    // the same id again on the running node: answered from the window as well
    assert.deepEqual(await (await counterVia(node, once)).increment(5), { count: 5 })
    await stopNodes([node], 'SIGKILL')
    await restartNode(node)
    await waitFor(async () => (await placement(node))?.state === 'transformed', { timeout: 120_000, what: 'the counter to be back after the restart' })
    assert.deepEqual(await (await counterVia(node, once)).increment(5), { count: 5 })
    assert.deepEqual(await (await counterVia(node)).get(), { count: 5 })
    // and after a graceful restart too
    await stopNodes([node], 'SIGINT')
    await restartNode(node)
    await waitFor(async () => (await placement(node))?.state === 'transformed', { timeout: 120_000, what: 'the counter to be back after the graceful restart' })
    assert.deepEqual(await (await counterVia(node, once)).increment(5), { count: 5 })
    assert.deepEqual(await (await counterVia(node)).increment(1), { count: 6 })
  })
})
