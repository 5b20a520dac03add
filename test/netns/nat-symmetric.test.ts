// Two homes behind symmetric NAT routers (MASQUERADE --random-fully: a new public port for
// every destination, so the port the STUN server saw is not the one a punch must hit) and
// one public host (scripts/netns/run.sh; the test makes home1's and home2's routers
// symmetric itself and puts them back afterwards). The homes try WebRTC, fail, and stay on
// the circuit relay: `stem peers` says `relayed`, /metrics counts the failed attempts, and
// asks between them work over the relay. Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { waitFor } from '../support/wait.js'
import { stopAll, type StemProcess } from '../support/stem-process.js'
import { counterAcross, dumpIfFailed, netnsCall, netnsLayoutOrSkip, nsOf, pathBetween, startMesh, webrtcUpgrades, type NetnsLayout } from './netns-stem.js'

describe('homes behind symmetric NATs stay on the relay (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  const homes = ['home1', 'home2'] as const
  const switched: string[] = []
  before(async function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 2 })
    for (const h of homes) {
      if (layout.symmetric.includes(Number(h.slice(4)))) continue
      await netnsCall(layout, 'netns_nat_mode', nsOf(layout, h), 'symmetric')
      switched.push(h)
    }
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () { dumpIfFailed(this, nodes) })
  after(async () => {
    await stopAll()
    // later tests expect the port-preserving routers run.sh built
    for (const h of switched) await netnsCall(layout, 'netns_nat_mode', nsOf(layout, h), 'cone')
  })

  it('two homes reach each other only through the relay, labelled relayed, and the failed punches are counted', async () => {
    const started = Date.now()
    const since = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`
    await startMesh(layout, nodes, 'pub1', [...homes])
    await waitFor(async () => await pathBetween(layout, nodes, 'home1', 'home2') === 'relayed' && await pathBetween(layout, nodes, 'home2', 'home1') === 'relayed',
      { timeout: 120_000, what: 'home1 and home2 to reach each other through the relay' })
    console.log(`netns: homes relayed after ${since()}`)
    assert.equal(await pathBetween(layout, nodes, 'home1', 'pub1'), 'direct')

    // the smaller id tries at once, the other after 15 s; an attempt gives up within its 30 s
    // deadline (libp2p's WebRTC dial aborts after about 6 s here) and the next waits about
    // 5 s, doubling: a failure shows well within two minutes of being relayed
    const failed = await waitFor(async () => {
      const counts = await Promise.all(homes.map(async h => webrtcUpgrades(layout, nodes, h)))
      if (counts.some(c => c.succeeded > 0)) assert.fail(`a WebRTC upgrade succeeded through a symmetric NAT:\n${counts.map(c => c.text).join('')}`)
      return counts[0].failed + counts[1].failed >= 1 && counts
    }, { timeout: 120_000, what: 'a failed WebRTC attempt in /metrics' })
    console.log(`netns: a failed WebRTC attempt counted after ${since()}:\n${failed.map((c, i) => `${homes[i]}: ${c.text}`).join('')}`)
    for (const [a, b] of [['home1', 'home2'], ['home2', 'home1']]) assert.equal(await pathBetween(layout, nodes, a, b), 'relayed', `${a} reaches ${b}`)

    // the counter on one home, its clone on the other: asks between them ride the relay
    const { caller, increment } = await counterAcross(layout, nodes, ['home1', 'home2'])
    for (let i = 1; i <= 3; i++) assert.equal(await increment(), i)
    const other = caller === 'home1' ? 'home2' : 'home1'
    assert.equal(await pathBetween(layout, nodes, caller, other), 'relayed', `${caller} reaches ${other} after the asks`)
    console.log(`netns: asks over the relay done after ${since()}`)
  })
})
