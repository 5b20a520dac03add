// Durable reminders with real `stem` processes (issue 18): a reminder set 2 s ahead fires
// once after a kill -9 of the node running its cell (on the promoted clone), and once,
// late, with its due time, after a kill -9 of the whole mesh and a restart.
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { stemJson, printLogsIfFailed, stopAll } from '../support/stem-process.js'
import { gatewayOf, restartNode, startMesh, stopNodes, type MeshNode } from '../../scripts/support/stem-mesh.js'

const ALARM = `
export default class Alarm {
  fired = []
  set ({ body }) { return { id: stem.schedule(body.delay, 'ring', body.tag) } }
  ring (tag, meta) { this.fired.push({ tag, id: meta.reminder, due: meta.due, at: stem.now() }) }
  get () { return this.fired }
}
`
const MANIFEST = `app: alarm
cells:
  alarm:
    code: ./alarm.js
    clones: 1
routes:
  - POST /set -> alarm.set
  - GET /fired -> alarm.get
`

interface Firing { tag: string, id: string, due: number, at: number }

async function set (gateway: string, delay: number, tag: string): Promise<string> {
  const res = await fetch(`${gateway}/alarm/set`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ delay, tag }), signal: AbortSignal.timeout(15_000) })
  assert.equal(res.status, 200, await res.clone().text())
  return (await res.json() as { id: string }).id
}

/** the firings, once the app answers (after a failover or restart it may not for a while) */
async function fired (gateway: string): Promise<Firing[] | undefined> {
  const res = await fetch(`${gateway}/alarm/fired`, { signal: AbortSignal.timeout(5000) })
  return res.status === 200 ? await res.json() as Firing[] : undefined
}

/** Waits for `tag` to fire, then for a witness reminder set after it, and returns the firings of `tag`. */
async function firingsOf (gateway: string, tag: string, what: string): Promise<Firing[]> {
  await waitFor(async () => (await fired(gateway))?.some(f => f.tag === tag), { timeout: 180_000, what: `reminder ${tag} to fire ${what}` })
  // a duplicate would have fired with it: a reminder set later that has fired bounds the wait
  const witness = `${tag}-witness`
  await waitFor(async () => await set(gateway, 300, witness).then(() => true, () => false), { timeout: 60_000, what: 'the witness reminder to be set' })
  const all = await waitFor(async () => { const f = await fired(gateway); return f?.some(x => x.tag === witness) === true && f }, { timeout: 60_000, what: 'the witness reminder to fire' })
  return all.filter(f => f.tag === tag)
}

describe('durable reminders with real stem processes', function () {
  this.timeout(900_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-alarm-'))
    await writeFile(join(dir, 'alarm.js'), ALARM)
    await writeFile(join(dir, 'app.yaml'), MANIFEST)
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  afterEach(printLogsIfFailed)
  afterEach(stopAll)

  it('a reminder set 2 s ahead fires once after kill -9 of its node, and once (late, its due time passed in) after kill -9 of the whole mesh', async () => {
    const nodes = await startMesh(3)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    const placed = await waitFor(async () => {
      const c = (await stemJson<AppCellsListing[]>(['cells', 'alarm', '--data', nodes[0].dataDir]))[0]?.cells[0]
      return c?.state === 'transformed' && c.clones.length > 0 && c
    }, { timeout: 60_000, what: 'the alarm and its clone to be placed' })
    const primary = nodes.find(n => n.process.peerId() === placed.node) as MeshNode
    const others = nodes.filter(n => n !== primary)
    const gateway = gatewayOf(others[0].process)

    // phase 1: the node running the cell dies before the reminder is due
    const id = await set(gateway, 2000, 'failover')
    const killedAt = Date.now()
    await stopNodes([primary], 'SIGKILL')
    const failover = await firingsOf(gateway, 'failover', 'after kill -9 of the node running its cell')
    assert.equal(failover.length, 1, JSON.stringify(failover))
    assert.equal(failover[0].id, id)
    assert.ok(failover[0].at >= killedAt && failover[0].at >= failover[0].due, JSON.stringify(failover[0]))
    await restartNode(primary)

    // phase 2: the whole mesh dies before the reminder is due, and comes back after it
    const gateway2 = gatewayOf(others[1].process)
    await waitFor(async () => await set(gateway2, 2000, 'mesh').then(() => true, () => false), { timeout: 60_000, what: 'the mesh reminder to be set' })
    const dueBy = Date.now() + 2000
    await stopNodes(nodes, 'SIGKILL')
    // the reminder falls due while every node is down
    await waitFor(() => Date.now() > dueBy + 100, { what: 'the reminder to fall due while the mesh is down' })
    const restartedAt = Date.now()
    for (const n of nodes) await restartNode(n)
    const mesh = await firingsOf(gatewayOf(nodes[2].process), 'mesh', 'after kill -9 of every node and a restart')
    assert.equal(mesh.length, 1, JSON.stringify(mesh))
    assert.ok(mesh[0].due <= dueBy && mesh[0].at > restartedAt, `fired late, after the restart, with its due time: ${JSON.stringify(mesh[0])}`)
  })
})
