// A failed cell, end to end with real `stem` processes: it is shown `failed` with its
// reason and time by every node, its node's log names it and why, `stem restart` brings
// it back from its last good state through any node, and so does a republish.
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { spawnStem, stem, stemJson, printLogsIfFailed, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

const ADDRESS = 'fragile/c#0'

describe('a failed cell on a mesh of real stem processes', function () {
  this.timeout(600_000)
  afterEach(printLogsIfFailed)
  after(stopAll)

  it('is shown failed with its reason everywhere, logged, and restarted from its last good state by stem restart and by a republish', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stem-fragile-'))
    await writeFile(join(dir, 'c.js'), 'export default class C { n = 0; inc () { return ++this.n } loop () { for (;;) {} } }\n')
    await writeFile(join(dir, 'app.yaml'), 'app: fragile\ncells:\n  c:\n    code: ./c.js\n    clones: 0\n    timeout: 50ms\n')
    const first = await spawnStem(['start'], await tempDataDir()).ready()
    const invite = await stem(['invite', '--data', first.dataDir])
    const second = await spawnStem(['join', invite.stdout.trim()], await tempDataDir()).ready()
    const nodes: StemProcess[] = [first, second]
    await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', second.dataDir])).peers.length === 1, { timeout: 60_000, what: 'the nodes to see each other' })
    const published = await stemJson<{ cells: AppCellsListing['cells'] }>(['publish', join(dir, 'app.yaml'), '--data', first.dataDir])
    const runner = nodes.find(n => n.peerId() === published.cells[0].node) as StemProcess
    const call = async (method: string): Promise<{ code: number | null, stdout: string, stderr: string }> => await stem(['call', 'fragile/c', method, '--data', first.dataDir])
    const cellOn = async (n: StemProcess): Promise<AppCellsListing['cells'][number] | undefined> =>
      (await stemJson<AppCellsListing[]>(['cells', 'fragile', '--data', n.dataDir]))[0]?.cells.find(c => c.address === ADDRESS)

    for (let round = 1; round <= 2; round++) {
      assert.deepEqual(JSON.parse((await call('inc')).stdout), round === 1 ? 1 : 3)
      const before = Date.now()
      for (let i = 0; i < 5; i++) assert.equal((await call('loop')).code, 1)
      // every node shows it failed, with why and since when
      for (const n of nodes) {
        const cell = await waitFor(async () => { const c = await cellOn(n); return c?.state === 'failed' && c }, { timeout: 30_000, what: 'the cell to show failed' })
        assert.match(cell.reason ?? '', /^crashed 5 times within 60 s; last: exceeded its CPU time limit of 50 ms$/)
        assert.ok((cell.since ?? 0) >= before - 1000)
      }
      const text = await stem(['cells', 'fragile', '--data', second.dataDir])
      assert.match(text.stdout, /fragile\/c#0 .* failed since \S+: crashed 5 times/)
      assert.match(runner.stderr, /cell fragile\/c#0 crashed: exceeded its CPU time limit of 50 ms/)
      assert.match(runner.stderr, /cell fragile\/c#0 failed: crashed 5 times within 60 s/)
      assert.match((await call('inc')).stderr, /has failed: crashed 5 times/)

      if (round === 1) {
        const restarted = await stem(['restart', 'fragile', '--data', first.dataDir])
        assert.equal(restarted.code, 0, restarted.stderr)
        assert.match(restarted.stdout, /^restarted the failed instances of fragile from their last good state$/m)
      } else {
        const republished = await stem(['publish', join(dir, 'app.yaml'), '--data', first.dataDir])
        assert.equal(republished.code, 0, republished.stderr)
      }
      // back from its last good state, shown transformed again
      await waitFor(async () => (await cellOn(second))?.state === 'transformed', { timeout: 30_000, what: 'the cell to show transformed' })
      if (round === 1) assert.deepEqual(JSON.parse((await call('inc')).stdout), 2)
    }
    assert.deepEqual(JSON.parse((await call('inc')).stdout), 4)
    assert.match((await stem(['restart', 'fragile', '--data', first.dataDir])).stdout, /^no failed instance of fragile$/m)
  })
})
