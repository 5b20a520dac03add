// Two homes behind symmetric NAT routers (MASQUERADE --random-fully: a new public port for
// every destination, so the port the STUN server saw is not the one a punch must hit) and
// one public host (scripts/netns/run.sh; the test makes home1's and home2's routers
// symmetric itself and puts them back afterwards). The homes try WebRTC, fail, and stay on
// the circuit relay: `stem peers` says `relayed`, /metrics counts the failed attempts, and
// asks between them work over the relay. Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { stopAll, type StemProcess } from '../support/stem-process.js'
import { dumpIfFailed, netnsLayoutOrSkip, pathBetween, startMesh, type NetnsLayout } from './netns-stem.js'
import { expectRelayedPair, switchNatModes } from './relayed-pair.js'

describe('homes behind symmetric NATs stay on the relay (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  let restore = async (): Promise<void> => {}
  before(async function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 2 })
    restore = await switchNatModes(layout, { home1: 'symmetric', home2: 'symmetric' })
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () { dumpIfFailed(this, nodes) })
  after(async () => {
    await stopAll()
    await restore()
  })

  it('two homes reach each other only through the relay, labelled relayed, and the failed punches are counted', async () => {
    await startMesh(layout, nodes, 'pub1', ['home1', 'home2'])
    await expectRelayedPair(layout, nodes, ['home1', 'home2'])
    assert.equal(await pathBetween(layout, nodes, 'home1', 'pub1'), 'direct')
  })
})
