// A friend cloud across real network namespaces: two public hosts and home hosts behind
// their own NAT routers (scripts/netns/run.sh). Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import type { PeersResponse, StatusResponse } from '../../src/api/types.js'
import { waitFor } from '../support/wait.js'
import { stopAll } from '../support/stem-process.js'
import type { StemProcess } from '../support/stem-process.js'
import { netnsCall, netnsLayoutOrSkip, spawnStemIn, stemIn, stemJsonIn, type NetnsLayout } from './netns-stem.js'

describe('stem across NAT routers (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  before(function () {
    layout = netnsLayoutOrSkip(this)
    console.log(`netns: ${layout.prefix}, ${layout.pubs} public, ${layout.homes} home hosts, impairment: ${layout.impairment}`)
  })
  after(async () => { await stopAll() })

  it('home hosts join through NAT with one invite, see everyone, reach each other, and a partitioned home rejoins', async () => {
    const ns = (name: string): string => `${layout.prefix}-${name}`
    const hosts = [...Array.from({ length: layout.pubs }, (_, i) => `pub${i + 1}`), ...Array.from({ length: layout.homes }, (_, i) => `home${i + 1}`)]
    const nodes = new Map<string, StemProcess>()
    nodes.set('pub1', await (await spawnStemIn(ns('pub1'), ['start'])).ready())
    const invite = await stemIn(ns('pub1'), ['invite', '--data', nodes.get('pub1')!.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const token = invite.stdout.trim()
    for (const h of hosts.slice(1)) nodes.set(h, await spawnStemIn(ns(h), ['join', token]))
    await Promise.all([...nodes.values()].map(async p => p.ready()))
    const ids = new Map([...nodes].map(([h, p]) => [h, p.peerId()]))
    const peersOf = async (h: string): Promise<PeersResponse> => stemJsonIn<PeersResponse>(ns(h), ['peers', '--data', nodes.get(h)!.dataDir])
    const statusOf = async (h: string): Promise<StatusResponse> => stemJsonIn<StatusResponse>(ns(h), ['status', '--data', nodes.get(h)!.dataDir])
    const seesAll = async (h: string, others: string[]): Promise<boolean> => {
      const v = await peersOf(h)
      return others.every(o => v.peers.some(e => e.id === ids.get(o)))
    }

    // every node's `stem peers --json` lists every other node
    for (const h of hosts) {
      await waitFor(async () => seesAll(h, hosts.filter(o => o !== h)), { timeout: 180_000, what: `${h} to see every other node` })
    }

    // a home node is dialable through a relay: it advertises a /p2p-circuit address, and
    // two home nodes (neither can dial the other's private address) get connected
    const home1 = ids.get('home1')!
    await waitFor(async () => (await peersOf('pub2')).peers.find(e => e.id === home1)?.addrs.some(a => a.includes('/p2p-circuit')) === true,
      { timeout: 120_000, what: 'home1 to advertise a relayed address' })
    await waitFor(async () => (await statusOf('home2')).connections.includes(home1), { timeout: 120_000, what: 'home2 to be connected to home1' })

    // cut one home host off the network: the others drop it; heal it: it rejoins
    const cut = 'home3'
    const rest = hosts.filter(h => h !== cut)
    await netnsCall(layout, 'netns_partition', ns(cut))
    for (const h of rest) {
      await waitFor(async () => !(await peersOf(h)).peers.some(e => e.id === ids.get(cut)), { timeout: 180_000, what: `${h} to drop the partitioned ${cut}` })
    }
    await netnsCall(layout, 'netns_heal', ns(cut))
    for (const h of rest) {
      await waitFor(async () => (await peersOf(h)).peers.some(e => e.id === ids.get(cut)), { timeout: 180_000, what: `${h} to see ${cut} again after healing` })
    }
    await waitFor(async () => seesAll(cut, rest), { timeout: 180_000, what: `${cut} to see every other node again` })
  })
})
