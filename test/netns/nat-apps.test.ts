// An app served from home hosts behind NAT routers (scripts/netns/run.sh): the public hosts
// contribute no cell slots, so the counter and its warm clone run on NAT'd homes. It is
// called through a public host's HTTP gateway and with `stem call` from another home; the
// home running it loses its uplink (its router silently drops everything) and comes back:
// calls go on through the clone that takes over, and no acknowledged increment is lost.
// Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { PeersResponse } from '../../src/api/types.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { waitFor } from '../support/wait.js'
import { repoRoot, stopAll, type StemProcess } from '../support/stem-process.js'
import { httpIn, netnsCall, netnsLayoutOrSkip, pubAddress, spawnStemIn, stemIn, stemJsonIn, type NetnsLayout } from './netns-stem.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')
type CellListing = AppCellsListing['cells'][number]

describe('apps on home hosts behind NAT (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  before(function () {
    layout = netnsLayoutOrSkip(this, { pubs: 2, homes: 3 })
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () {
    // a failure on CI is only diagnosable from the nodes' own logs
    if (this.currentTest?.state !== 'failed') return
    for (const [host, p] of nodes) console.log(`--- ${host} (${p.running ? 'running' : `exited ${p.exitCode}`}) stderr:\n${p.stderr.split('\n').slice(-40).join('\n')}`)
  })
  after(async () => { await stopAll() })

  it('cells on NAT\'d homes serve the gateway and `stem call`; a home losing its uplink fails over to its clone with no acknowledged increment lost', async () => {
    const ns = (host: string): string => `${layout.prefix}-${host}`
    const homes = Array.from({ length: layout.homes }, (_, i) => `home${i + 1}`)
    const hosts = ['pub1', 'pub2', ...homes]
    // public hosts relay and serve the gateway but take no cells; home3 also asks its router
    // for a UPnP mapping (there is none: the node must work the same without one)
    nodes.set('pub1', await (await spawnStemIn(ns('pub1'), ['start', '--cells', '0', '--gateway', '0.0.0.0:0'])).ready())
    const invite = await stemIn(ns('pub1'), ['invite', '--data', nodes.get('pub1')!.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const token = invite.stdout.trim()
    nodes.set('pub2', await spawnStemIn(ns('pub2'), ['join', token, '--cells', '0']))
    for (const h of homes) nodes.set(h, await spawnStemIn(ns(h), ['join', token, ...(h === 'home3' ? ['--upnp'] : [])]))
    await Promise.all([...nodes.values()].map(async p => p.ready()))
    assert.match(nodes.get('home3')!.stdout, /^upnp: /m)
    const ids = new Map([...nodes].map(([h, p]) => [h, p.peerId()]))
    const hostOf = (id: string): string => [...ids].find(([, i]) => i === id)?.[0] ?? `unknown peer ${id}`
    const data = (h: string): string => nodes.get(h)!.dataDir
    const peersOf = async (h: string): Promise<PeersResponse> => stemJsonIn<PeersResponse>(ns(h), ['peers', '--data', data(h)])
    for (const h of hosts) {
      await waitFor(async () => {
        const v = await peersOf(h)
        return hosts.filter(o => o !== h).every(o => v.peers.some(e => e.id === ids.get(o)))
      }, { timeout: 180_000, what: `${h} to see every other node` })
    }

    // published from a home host; the instance and its clone land on NAT'd homes
    const published = await stemJsonIn<{ app: string, cells: CellListing[] }>(ns('home2'), ['publish', manifest, '--data', data('home2')])
    assert.equal(published.app, 'counter')
    const cellsSeenBy = async (h: string): Promise<CellListing[]> =>
      (await stemJsonIn<AppCellsListing[]>(ns(h), ['cells', 'counter', '--data', data(h)]))[0]?.cells ?? []
    const placed = await waitFor(async () => {
      const cells = await cellsSeenBy('pub1')
      return cells.length === 1 && cells[0].state === 'transformed' && cells[0].clones.length === 1 && cells[0]
    }, { timeout: 120_000, what: 'the counter and its clone to be placed' })
    const primary = hostOf(placed.node)
    assert.ok(homes.includes(primary), `the counter runs on a home host, not ${primary}`)
    assert.ok(homes.includes(hostOf(placed.clones[0])), 'its clone runs on a home host')
    const caller = homes.find(h => h !== primary && ids.get(h) !== placed.clones[0]) ?? homes.find(h => h !== primary)!
    console.log(`netns: counter on ${primary}, clone on ${hostOf(placed.clones[0])}, stem call from ${caller}, gateway on pub1`)

    // the gateway of pub1, called from pub2 (a client on the internet)
    const port = /^gateway: http:\/\/[^\s]+:(\d+)$/m.exec(nodes.get('pub1')!.stdout)?.[1]
    assert.ok(port !== undefined, 'stem start prints the gateway URL')
    const gateway = `http://${pubAddress(layout, 1)}:${port}/counter/count`
    let acked = 0
    let failed = 0
    const viaGateway = async (): Promise<number | undefined> => {
      const r = await httpIn(ns('pub2'), 'POST', gateway, { by: 1 })
      return r.status === 200 ? (JSON.parse(r.body) as { count: number }).count : undefined
    }
    const viaCli = async (from: string): Promise<number | undefined> => {
      const r = await stemIn(ns(from), ['call', 'counter/counter', 'increment', '1', '--data', data(from)])
      return r.code === 0 ? (JSON.parse(r.stdout) as { count: number }).count : undefined
    }
    // one increment through each path; returns how many were acknowledged
    const incrementBoth = async (from: string): Promise<number> => {
      let n = 0
      for (const call of [viaGateway, async () => viaCli(from)]) {
        const count = await call()
        if (count === undefined) failed++
        else { acked++; n++ }
      }
      return n
    }
    const countVia = async (h: string): Promise<number> => {
      const r = await stemIn(ns(h), ['call', 'counter/counter', 'get', '--data', data(h)])
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.stdout) as { count: number }).count
    }

    // before any fault every call is acknowledged, and counts are exact
    for (let i = 0; i < 3; i++) assert.equal(await incrementBoth(caller), 2, 'calls before the fault succeed')
    const before = await httpIn(ns('pub2'), 'GET', gateway)
    assert.equal(before.status, 200, before.body)
    assert.deepEqual(JSON.parse(before.body), { count: acked })
    assert.equal(await countVia(caller), acked)

    // the counter's home loses its uplink: calls keep coming until the clone has taken over
    // on another home and serves both paths again
    await netnsCall(layout, 'netns_blackhole', ns(primary))
    const ackedBeforeFault = acked
    await waitFor(async () => {
      const cells = await cellsSeenBy(caller)
      const moved = cells.length === 1 && cells[0].state === 'transformed' && cells[0].node !== ids.get(primary)
      return (await incrementBoth(caller)) === 2 && moved
    }, { timeout: 180_000, interval: 500, what: `the counter to fail over from the cut-off ${primary} and serve again` })
    const moved = (await cellsSeenBy(caller))[0]
    assert.ok(homes.includes(hostOf(moved.node)) && hostOf(moved.node) !== primary, `the counter moved to another home, not ${hostOf(moved.node)}`)
    console.log(`netns: ${primary} cut off: counter now on ${hostOf(moved.node)}; ${acked - ackedBeforeFault} increments acknowledged, ${failed} failed during the failover`)

    // the uplink comes back: the home rejoins and its node routes to the current instance
    await netnsCall(layout, 'netns_unblackhole', ns(primary))
    await waitFor(async () => {
      const v = await peersOf(primary)
      return hosts.filter(o => o !== primary).every(o => v.peers.some(e => e.id === ids.get(o)))
    }, { timeout: 180_000, what: `${primary} to see every node again after healing` })
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await incrementBoth(i === 0 ? caller : primary)) === 2,
        { timeout: 120_000, interval: 500, what: 'calls through both paths after healing' })
    }

    // every acknowledged increment is in the final count; a failed call is not acknowledged,
    // but one that timed out at the caller may still have been applied: never more than those
    const final = await waitFor(async () => {
      const counts = await Promise.all([caller, primary].map(countVia))
      const r = await httpIn(ns('pub2'), 'GET', gateway)
      const viaHttp = r.status === 200 ? (JSON.parse(r.body) as { count: number }).count : -1
      return counts.every(c => c === viaHttp) && viaHttp
    }, { timeout: 60_000, what: 'every path to read the same count' })
    console.log(`netns: final count ${final}: ${acked} increments acknowledged, ${failed} failed`)
    assert.ok(final >= acked, `no acknowledged increment lost: count ${final} < ${acked} acknowledged`)
    assert.ok(final <= acked + failed, `count ${final} exceeds the ${acked + failed} increments sent`)
    if (failed === 0) assert.equal(final, acked)
  })
})
