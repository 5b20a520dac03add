// Issue 6 with real `stem` processes: owner requests through a node outside the app's
// Raft group (forwarded to a member), and the rollback of a failed rollout. A 4-node mesh
// where the counter app's group has 3 members: through the 4th node, publish an update
// (state kept), scale, publish code that throws on init (the publish fails naming the
// cell and the cause; the previous code keeps serving with its count), then revert.
import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AppCellsListing, AppListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { repoRoot, spawnStem, stem, stemJson, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

type Published = { app: string, changed: boolean, cells: AppCellsListing['cells'] }

/** the counter example with another cell code, in a directory of its own */
async function counterVariant (name: string, code: string): Promise<string> {
  const dir = join(await tempDataDir(), name)
  await mkdir(dir)
  await writeFile(join(dir, 'counter.js'), code)
  await writeFile(join(dir, 'app.yaml'), await readFile(join(repoRoot, 'examples', 'counter', 'app.yaml'), 'utf8'))
  return join(dir, 'app.yaml')
}

describe('owner requests through any node, and rollback of a failed rollout (real processes)', function () {
  this.timeout(360_000)
  after(stopAll)

  it('publish an update, scale, fail a rollout and revert through a node outside the group', async () => {
    const first = await spawnStem(['start'], await tempDataDir()).ready()
    const invite = (await stem(['invite', '--data', first.dataDir])).stdout.trim()
    const others = await Promise.all([0, 1].map(async () => spawnStem(['join', invite], await tempDataDir()).ready()))
    const group: StemProcess[] = [first, ...others]
    for (const n of group) {
      await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', n.dataDir])).peers.length === 2, { timeout: 60_000, what: 'the 3 nodes to see each other' })
    }
    const published = await stemJson<Published>(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', first.dataDir])
    assert.equal(published.cells[0].state, 'transformed')
    assert.equal(published.cells[0].current, true, 'the instance runs the published revision')

    // a 4th node joins after the app's group formed: it is not a member
    const fourth = await spawnStem(['join', invite], await tempDataDir()).ready()
    const fourthId = fourth.peerId()
    const apps = await waitFor(async () => {
      const list = await stemJson<AppListing[]>(['apps', '--data', fourth.dataDir])
      return list.length === 1 && list
    }, { timeout: 60_000, what: 'the 4th node to learn of the app' })
    assert.equal(apps[0].members.length, 3)
    assert.ok(!apps[0].members.includes(fourthId))
    // the owner carries the key to the 4th node's machine as an exported key file
    const keyFile = join(await tempDataDir(), 'owner.key')
    assert.equal((await stem(['owner', 'export', keyFile, '--data', first.dataDir])).code, 0)
    const call = async (node: StemProcess, ...args: string[]): Promise<unknown> => {
      const r = await stem(['call', ...args, '--data', node.dataDir])
      assert.equal(r.code, 0, r.stderr)
      return JSON.parse(r.stdout)
    }
    assert.deepEqual(await call(fourth, 'counter/counter', 'increment', '5'), { count: 5 })

    // an update through the 4th node: the new code runs with the old state
    const v2 = await counterVariant('v2', (await readFile(join(repoRoot, 'examples', 'counter', 'counter.js'), 'utf8')).replace('  get () {', '  double () {\n    this.count *= 2\n    return { count: this.count }\n  }\n\n  get () {'))
    const updated = await stemJson<Published>(['publish', v2, '--owner-key', keyFile, '--data', fourth.dataDir])
    assert.equal(updated.changed, true)
    assert.ok(updated.cells.every(c => c.state === 'transformed' && c.current))
    assert.notEqual(updated.cells[0].revision, published.cells[0].revision)
    assert.deepEqual(await call(fourth, 'counter/counter', 'double'), { count: 10 })
    // then imports it there; the same manifest again through the 4th node changes nothing
    const imported = await stem(['owner', 'import', keyFile, '--data', fourth.dataDir])
    assert.equal(imported.code, 0, imported.stderr)
    const again = await stem(['publish', v2, '--data', fourth.dataDir])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /unchanged/)

    // scale through the 4th node: it returns once both replicas run (not while one is starting)
    const scaled = await stem(['scale', 'counter/counter', '2', '--data', fourth.dataDir])
    assert.equal(scaled.code, 0, scaled.stderr)
    assert.match(scaled.stdout, /^placing counter: counter [012]\/2 running\n(.*\n)*counter\/counter: 2 replicas running\n$/)
    const scaledCells = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', fourth.dataDir]))[0]?.cells ?? []
    assert.equal(scaledCells.length, 2)
    assert.ok(scaledCells.every(c => c.state === 'transformed' && c.current), JSON.stringify(scaledCells))

    // a rollout whose code throws on init fails clearly and rolls back; the state is kept
    // (its manifest asks for 1 replica again: the first instance's update fails)
    const broken = await counterVariant('broken', 'export default class Counter {\n  count = 0\n  constructor () { throw new Error(\'boom on init\') }\n  get () { return { count: this.count } }\n  increment () { return this.get() }\n}\n')
    const failed = await stem(['publish', broken, '--data', fourth.dataDir])
    assert.notEqual(failed.code, 0)
    assert.match(failed.stderr.trim(), /^[^\n]*counter\/counter: the new code failed and was rolled back[^\n]*boom on init[^\n]*$/)
    assert.deepEqual(await call(first, 'counter/counter#0', 'get'), { count: 10 })
    assert.deepEqual(await call(fourth, 'counter/counter#0', 'double'), { count: 20 }, 'the previous code serves')
    const after = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', first.dataDir]))[0]
    assert.deepEqual(after.rollbacks.map(r => r.cell), ['counter'])
    const listed = await stem(['cells', 'counter', '--data', fourth.dataDir])
    assert.match(listed.stdout, /^counter\/counter: last rollout rolled back: .*boom on init/m)
    await waitFor(async () => {
      const cells = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', fourth.dataDir]))[0]?.cells ?? []
      return cells.length === 1 && cells.every(c => c.state === 'transformed' && c.current && c.revision === updated.cells[0].revision)
    }, { timeout: 60_000, what: 'the instance to run the previous revision' })
    // publishing the manifest that runs now (v2, 1 replica) changes nothing
    const back = await stemJson<Published>(['publish', v2, '--data', fourth.dataDir])
    assert.equal(back.changed, false)

    // revert through the 4th node: the app is gone everywhere
    const reverted = await stem(['revert', 'counter', '--data', fourth.dataDir])
    assert.equal(reverted.code, 0, reverted.stderr)
    for (const n of [...group, fourth]) {
      await waitFor(async () => (await stemJson<AppListing[]>(['apps', '--data', n.dataDir])).length === 0, { timeout: 30_000, what: 'the app to be gone from every node' })
    }
  })
})
