// Honest capacity (issue 19) with real `stem` processes: a node's advertised free capacity
// counts what is placed on it — each running cell and each held clone its memory limit ×
// headroom and a cell slot, plus one cell-host footprint per app — in its own `stem status`
// and in the adverts its peers show in `stem peers`; it comes back once the app is reverted.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { PeersResponse, StatusResponse } from '../../src/api/types.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { cellsUsage } from '../../src/topology/placement-accounting.js'
import { waitFor } from '../support/wait.js'
import { printLogsIfFailed, repoRoot, spawnStem, stem, stemJson, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

const MIB = 2 ** 20
const CONTRIBUTED = { cells: 10, memory: 1024 * MIB }
/** examples/counter: one instance and one clone of 16MiB */
const COUNTER_MEMORY = 16 * MIB

describe('node: free capacity counts what is placed', function () {
  this.timeout(240_000)
  afterEach(printLogsIfFailed)
  after(stopAll)

  it('the nodes running the counter and holding its clone advertise less free memory and cells, and all of it again after a revert', async () => {
    const flags = ['--cells', String(CONTRIBUTED.cells), '--memory', '1GiB']
    const first = await spawnStem(['start'], await tempDataDir(), flags).ready()
    const invite = await stem(['invite', '--data', first.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const second: StemProcess = await spawnStem(['join', invite.stdout.trim()], await tempDataDir(), flags).ready()
    const nodes = [first, second]
    for (const n of nodes) {
      await waitFor(async () => (await stemJson<PeersResponse>(['peers', '--data', n.dataDir])).peers.length === 1, { timeout: 60_000, what: 'each node to see the other' })
    }
    for (const n of nodes) {
      const s = await stemJson<StatusResponse>(['status', '--data', n.dataDir])
      assert.deepEqual({ cells: s.free.cells, memory: s.free.memory }, CONTRIBUTED, 'nothing placed: all of it free')
    }

    const published = await stem(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', first.dataDir])
    assert.equal(published.code, 0, published.stderr)
    const cells = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', first.dataDir]))[0].cells
    assert.equal(cells.length, 1)
    const holders = [cells[0].node, ...cells[0].clones]
    assert.equal(holders.length, 2, 'the counter runs on one node, its clone on the other')
    // one cell of 16MiB on each node, with its app's cell-host footprint
    const used = cellsUsage([{ app: 'counter', memory: COUNTER_MEMORY }])
    const expected = { cells: CONTRIBUTED.cells - 1, memory: CONTRIBUTED.memory - used.memory }
    assert.ok(used.memory > COUNTER_MEMORY, 'the footprint and headroom are counted')

    for (const n of nodes) {
      // the node's own view
      await waitFor(async () => {
        const s = await stemJson<StatusResponse>(['status', '--data', n.dataDir])
        return s.free.cells === expected.cells && s.free.memory === expected.memory
      }, { timeout: 30_000, what: `stem status of ${n.peerId()} to show the counter's cell placed` })
      // its advert, as the other node shows it
      const other = nodes.find(o => o !== n) as StemProcess
      await waitFor(async () => {
        const view = await stemJson<PeersResponse>(['peers', '--data', other.dataDir])
        const entry = view.peers.find(p => p.id === n.peerId())
        return entry !== undefined && entry.free.cells === expected.cells && entry.free.memory === expected.memory
      }, { timeout: 30_000, what: `the advert of ${n.peerId()} to show its placed cell` })
    }

    const reverted = await stem(['revert', 'counter', '--data', first.dataDir])
    assert.equal(reverted.code, 0, reverted.stderr)
    for (const n of nodes) {
      await waitFor(async () => {
        const s = await stemJson<StatusResponse>(['status', '--data', n.dataDir])
        return s.free.cells === CONTRIBUTED.cells && s.free.memory === CONTRIBUTED.memory
      }, { timeout: 60_000, what: `stem status of ${n.peerId()} to show all of its contribution free after the revert` })
    }
  })
})
