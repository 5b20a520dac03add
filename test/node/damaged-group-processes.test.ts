// Issue 14, "a damaged group does not stop the node", with real `stem` processes: a node
// whose app group WAL is damaged in the middle starts anyway, names the group in one error
// line, keeps the damaged directory aside, rejoins the group from the other members, and
// the app still answers with its acknowledged state through that node's gateway.
import assert from 'node:assert/strict'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { waitFor } from '../support/wait.js'
import { repoRoot, stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { gatewayOf, restartNode, startMesh, stopNodes } from '../../scripts/support/stem-mesh.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')

describe('a damaged app group with real stem processes', function () {
  this.timeout(600_000)
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('the node starts, names the group in one line, moves it aside and rejoins it from its members', async () => {
    const nodes = await startMesh(3)
    await stemJson(['publish', manifest, '--data', nodes[0].dataDir])
    let acked = 0
    for (let i = 0; i < 5; i++) {
      const res = await waitFor(async () => {
        const r = await fetch(`${gatewayOf(nodes[1].process)}/counter/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 1 }), signal: AbortSignal.timeout(15_000) })
        return r.status === 200 && r
      }, { timeout: 60_000, what: 'an add to be acknowledged' })
      await res.json()
      acked++
    }
    // the victim is not the bootstrap node, so the others keep their mesh
    const victim = nodes[2]
    await stopNodes([victim], 'SIGINT')
    const groupsDir = join(victim.dataDir, 'groups')
    const group = (await readdir(groupsDir)).find(n => /^counter~[0-9a-f]{8}$/.test(n))
    assert.ok(group !== undefined, 'the victim is a member of the counter group')
    const wal = (await readdir(join(groupsDir, group))).filter(n => n.startsWith('wal-')).sort()
    const sizes = await Promise.all(wal.map(async n => (await stat(join(groupsDir, group, n))).size))
    const path = join(groupsDir, group, wal[sizes.indexOf(Math.max(...sizes))])
    const buf = await readFile(path)
    buf[Math.floor(buf.length / 2)] ^= 0x20
    await writeFile(path, buf)

    const p = await restartNode(victim)
    const line = await waitFor(() => p.stderr.split('\n').find(l => l.includes(`raft group ${group} is damaged and was moved aside`)), { what: 'the damaged group named', timeout: 30_000 })
    assert.match(line, /ERROR/)
    assert.match(line, new RegExp(`moved aside to \\S*${group}\\.damaged-`))
    assert.equal(p.stderr.split('\n').filter(l => l.includes('is damaged and was moved aside')).length, 1)
    assert.equal((await readdir(groupsDir)).filter(n => n.startsWith(`${group}.damaged-`)).length, 1)
    await waitFor(() => p.stderr.includes(`raft group ${group} caught up after its log was lost`), { what: 'the victim caught up with the group', timeout: 120_000 })
    const count = await waitFor(async () => {
      const r = await fetch(`${gatewayOf(p)}/counter/count`, { signal: AbortSignal.timeout(5000) })
      return r.status === 200 && (await r.json() as { count: number }).count
    }, { timeout: 120_000, what: 'the counter to answer through the restarted node' })
    assert.ok(count >= acked, `count ${count} after ${acked} acknowledged adds`)
  })
})
