// A stalled node (SIGSTOP) with real `stem` processes: its TCP connections stay open, so
// no disconnect reports it. The live nodes must judge it down by its unanswered pings (not
// wait for its capacity adverts to expire), fail the counter over with every acknowledged
// increment, and when it wakes it must reconnect and rejoin without answering from its old primary or
// judging a live node down.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { repoRoot, spawnStem, stem, stemJson, printLogsIfFailed, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

describe('a stalled node with real stem processes', function () {
  this.timeout(600_000)
  afterEach(printLogsIfFailed)
  let stopped: StemProcess | undefined
  after(async () => {
    stopped?.signal('SIGCONT')
    await stopAll()
  })

  it('is judged down by unanswered pings, its primary fails over with every acknowledged increment, and it rejoins on waking', async () => {
    const first = await spawnStem(['start'], await tempDataDir()).ready()
    const invite = (await stem(['invite', '--data', first.dataDir])).stdout.trim()
    const others = await Promise.all([0, 1].map(async () => await spawnStem(['join', invite], await tempDataDir()).ready()))
    const nodes = [first, ...others]
    for (const n of nodes) await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', n.dataDir])).peers.length === 2, { timeout: 90_000, what: 'every node to see the other two' })
    await stemJson(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', first.dataDir])
    const cellVia = async (n: StemProcess): Promise<AppCellsListing['cells'][number] | undefined> =>
      (await stemJson<AppCellsListing[]>(['cells', 'counter', '--data', n.dataDir]))[0]?.cells[0]
    const placed = await waitFor(async () => { const c = await cellVia(first); return c?.state === 'transformed' && c.clones.length > 0 && c }, { timeout: 60_000, what: 'the counter and its clone to run' })
    const victim = nodes.find(n => n.peerId() === placed.node) as StemProcess
    const live = nodes.filter(n => n !== victim)
    const increment = async (via: StemProcess): Promise<number> => {
      const r = await stem(['call', 'counter/counter', 'increment', '1', '--data', via.dataDir])
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.stdout) as { count: number }).count
    }
    let acked = 0
    for (let i = 0; i < 5; i++) acked = await increment(live[0])
    const logged = live.map(n => n.stderr.length)

    victim.signal('SIGSTOP')
    stopped = victim
    // the verdict names the stall: pings unanswered on an open connection (the capacity advert expiry logs no such line)
    const verdict = new RegExp(`peer ${victim.peerId()} is down \\(no answer to pings for \\d+ ms on an open connection: stalled\\)`)
    await waitFor(() => live.some((n, i) => verdict.test(n.stderr.slice(logged[i]))), { timeout: 30_000, what: 'a live node to judge the stalled node down' })
    // the counter answers again from another node, with every acknowledged increment
    const after = await waitFor(async () => { const c = await cellVia(live[0]); return c?.state === 'transformed' && c.node !== victim.peerId() && c }, { timeout: 60_000, what: 'the counter to run on a live node' })
    assert.notEqual(after.node, victim.peerId())
    const count = await increment(live[1])
    assert.equal(count, acked + 1, 'an acknowledged increment was lost or doubled over the stall')
    acked = count

    const woke = victim.stderr.length
    victim.signal('SIGCONT')
    stopped = undefined
    // it sees it was frozen past the verdict, and hangs up on the connections its peers cut (they no longer answer a ping)
    await waitFor(() => /this node was frozen for \d+ ms: checking its connections/.test(victim.stderr.slice(woke)), { timeout: 30_000, what: 'the woken node to check its connections' })
    // awake, it is a member again, and whatever node is asked, the counter goes on from the acknowledged count
    await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', victim.dataDir])).peers.length === 2, { timeout: 60_000, what: 'the woken node to see the others again' })
    const next = await waitFor(async () => {
      const r = await stem(['call', 'counter/counter', 'increment', '1', '--data', victim.dataDir])
      return r.code === 0 && (JSON.parse(r.stdout) as { count: number }).count
    }, { timeout: 60_000, what: 'an increment through the woken node' })
    assert.equal(next, acked + 1, 'the woken node answered from its old primary')
    await waitFor(async () => { const c = await cellVia(victim); return c?.state === 'transformed' && c.clones.length > 0 }, { timeout: 60_000, what: 'the counter to have a clone again' })
    // and it judged no live node down on the silence of its own stall
    for (const n of live) assert.doesNotMatch(victim.stderr.slice(woke), new RegExp(`peer ${n.peerId()} is down`), 'the woken node judged a live node down')
  })
})
