// A mixed pair: home1 behind a symmetric NAT router, home2 behind a port-preserving one, and
// one public host (scripts/netns/run.sh; the test switches the routers it needs and puts
// them back afterwards). home2's router keeps one public port, but it only lets in what
// comes from the address and port home2 sent to, and home1's router picks a new port for
// every destination: no punch gets through either way. The pair stays on the circuit relay,
// labelled `relayed` on both sides in `stem peers --json`, and asks between them work.
// Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { stopAll, type StemProcess } from '../support/stem-process.js'
import { dumpIfFailed, netnsLayoutOrSkip, pathBetween, startMesh, type NetnsLayout } from './netns-stem.js'
import { expectRelayedPair, switchNatModes } from './relayed-pair.js'

describe('a home behind a symmetric NAT and one behind a port-preserving NAT stay on the relay (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  let restore = async (): Promise<void> => {}
  before(async function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 2 })
    restore = await switchNatModes(layout, { home1: 'symmetric', home2: 'cone' })
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () { dumpIfFailed(this, nodes) })
  after(async () => {
    await stopAll()
    await restore()
  })

  it('the pair reaches each other only through the relay, labelled relayed on both sides, and asks work', async () => {
    await startMesh(layout, nodes, 'pub1', ['home1', 'home2'])
    await expectRelayedPair(layout, nodes, ['home1', 'home2'])
    for (const h of ['home1', 'home2']) assert.equal(await pathBetween(layout, nodes, h, 'pub1'), 'direct', `${h} reaches pub1`)
  })
})
