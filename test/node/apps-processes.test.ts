// Issue 6 end to end with real `stem` processes on loopback: publish the counter example
// on a 3-node mesh, list apps and cells from every node, call it from every node and
// through the gateway, republish unchanged, refuse another owner, scale, recover from a
// kill -9, revert.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { StatusResponse } from '../../src/api/types.js'
import type { AppCellsListing, AppListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { repoRoot, spawnStem, stem, stemJson, printLogsIfFailed, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')

describe('apps on a mesh of real stem processes', function () {
  this.timeout(600_000)
  afterEach(printLogsIfFailed)
  after(stopAll)

  it('publish → apps/cells everywhere → call from every node and the gateway → unchanged republish → other owner refused → scale → kill -9 recovery → revert', async () => {
    const first = await spawnStem(['start'], await tempDataDir(), ['--gateway', '127.0.0.1:0']).ready()
    const invite = await stem(['invite', '--data', first.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const others = await Promise.all([0, 1].map(async () => spawnStem(['join', invite.stdout.trim()], await tempDataDir()).ready()))
    const nodes: StemProcess[] = [first, ...others]
    const ids = nodes.map(n => n.peerId())
    for (const n of nodes) {
      await waitFor(async () => (await stemJson<{ peers: Array<{ id: string }> }>(['peers', '--data', n.dataDir])).peers.length === 2, { timeout: 60_000, what: 'every node to see the 2 others' })
    }

    const published = await stemJson<{ app: string, changed: boolean, cells: AppCellsListing['cells'] }>(['publish', manifest, '--data', first.dataDir])
    assert.equal(published.app, 'counter')
    assert.equal(published.changed, true)
    assert.equal(published.cells.length, 1)
    assert.equal(published.cells[0].state, 'transformed')
    assert.equal(published.cells[0].clones.length, 1, 'the manifest asks for one warm clone')
    assert.notEqual(published.cells[0].clones[0], published.cells[0].node)

    // every node knows the app: owner, leader, term, all 3 nodes as members, the placement
    let owner = ''
    for (const n of nodes) {
      const apps = await waitFor(async () => {
        const list = await stemJson<AppListing[]>(['apps', '--data', n.dataDir])
        return list.length === 1 && list
      }, { timeout: 30_000, what: 'the app to be announced to every node' })
      assert.equal(apps[0].app, 'counter')
      assert.ok(ids.includes(apps[0].leader))
      assert.ok(apps[0].term >= 1)
      assert.deepEqual(apps[0].members, [...ids].sort())
      owner = owner === '' ? apps[0].owner : owner
      assert.equal(apps[0].owner, owner)
      const cells = await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', n.dataDir])
      assert.equal(cells.length, 1)
      assert.deepEqual(cells[0].cells.map(c => c.address), ['counter/counter#0'])
      assert.ok(ids.includes(cells[0].cells[0].node))
    }
    assert.ok(!ids.includes(owner), 'the owner key is not a node identity')

    // calls from every node reach the one instance; its state carries over
    let expected = 0
    for (const n of nodes) {
      expected += 5
      const r = await stem(['call', 'counter/counter', 'increment', '5', '--data', n.dataDir])
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(JSON.parse(r.stdout), { count: expected })
    }
    const bad = await stem(['call', 'counter/counter', 'noSuchMethod', '--data', others[0].dataDir])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /noSuchMethod/)

    // the gateway of the first node serves the manifest's routes
    const gateway = /^gateway: (\S+)$/m.exec(first.stdout)?.[1]
    assert.ok(gateway !== undefined, 'stem start prints the gateway URL')
    const count = await waitFor(async () => {
      const res = await fetch(`${gateway}/counter/count`)
      return res.status === 200 && await res.json() as unknown
    }, { what: 'the gateway route' })
    assert.deepEqual(count, { count: expected })

    // status counts the cell on the node that runs it
    const runner = nodes[ids.indexOf(published.cells[0].node)]
    const status = await stemJson<StatusResponse>(['status', '--data', runner.dataDir])
    assert.equal(status.cells, 1)
    assert.ok(status.apps.includes('counter'))

    // publishing the same manifest again changes nothing
    const again = await stemJson<{ changed: boolean, cells: AppCellsListing['cells'] }>(['publish', manifest, '--data', first.dataDir])
    assert.equal(again.changed, false)
    assert.equal(again.cells[0].node, published.cells[0].node)
    const after = await stem(['call', 'counter/counter', 'get', '--data', first.dataDir])
    assert.deepEqual(JSON.parse(after.stdout), { count: expected })

    // another user's key (another data dir's owner.key) cannot take the app over
    const stranger = await stem(['publish', manifest, '--data', others[1].dataDir])
    assert.notEqual(stranger.code, 0)
    assert.match(stranger.stderr, /belongs to owner/)
    const strangerRevert = await stem(['revert', 'counter', '--data', others[1].dataDir])
    assert.notEqual(strangerRevert.code, 0)
    assert.match(strangerRevert.stderr, /belongs to owner/)

    // scale to 2 replicas: the second instance goes to another node; calls are balanced
    const scaled = await stem(['scale', 'counter/counter', '2', '--data', first.dataDir])
    assert.equal(scaled.code, 0, scaled.stderr)
    const two = await waitFor(async () => {
      const cells = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', others[0].dataDir]))[0]?.cells ?? []
      return cells.length === 2 && cells.every(c => c.state === 'transformed') && cells
    }, { timeout: 60_000, what: 'the second replica to run' })
    assert.notEqual(two[0].node, two[1].node)
    const second = await stem(['call', 'counter/counter#1', 'increment', '1', '--data', first.dataDir])
    assert.deepEqual(JSON.parse(second.stdout), { count: 1 })

    // kill -9 a node running a replica (not the first node): its clone takes over on a live node
    const victim = nodes[ids.indexOf(two[1].node)] === first ? nodes[ids.indexOf(two[0].node)] : nodes[ids.indexOf(two[1].node)]
    const victimId = victim.peerId()
    victim.signal('SIGKILL')
    await victim.exited
    const live = nodes.filter(n => n !== victim)
    const moved = await waitFor(async () => {
      const cells = (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', live[0].dataDir]))[0]?.cells ?? []
      return cells.length === 2 && cells.every(c => c.state === 'transformed' && c.node !== victimId) && cells
    }, { timeout: 90_000, what: 'the lost instance to run on a live node' })
    assert.ok(moved.every(c => ids.includes(c.node)))
    // every acknowledged increment survived: the clones held each state before its answer left
    const counts = [expected, 1]
    for (const [i, address] of ['counter/counter#0', 'counter/counter#1'].entries()) {
      const r = await stem(['call', address, 'get', '--data', live[1].dataDir])
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(JSON.parse(r.stdout), { count: counts[i] }, `state of ${address}`)
    }

    // the lost member is removed from the app's raft group by membership change
    const liveIds = live.map(n => n.peerId()).sort()
    await waitFor(async () => {
      const apps = await stemJson<AppListing[]>(['apps', '--data', live[0].dataDir])
      return JSON.stringify(apps[0]?.members) === JSON.stringify(liveIds)
    }, { timeout: 60_000, what: 'the lost member to leave the group' })

    // the owner reverts the app: it disappears everywhere and its cells are blank again
    const reverted = await stem(['revert', 'counter', '--data', first.dataDir])
    assert.equal(reverted.code, 0, reverted.stderr)
    for (const n of live) {
      await waitFor(async () => (await stemJson<AppListing[]>(['apps', '--data', n.dataDir])).length === 0, { timeout: 30_000, what: 'the app to be gone from every node' })
      await waitFor(async () => (await stemJson<StatusResponse>(['status', '--data', n.dataDir])).cells === 0, { what: 'the cells to be reverted' })
    }
    const gone = await stem(['call', 'counter/counter', 'get', '--data', first.dataDir])
    assert.equal(gone.code, 1)
  })
})
