// Two homes behind their own port-preserving NAT routers (MASQUERADE) and one public host
// (scripts/netns/run.sh): the homes first reach each other through a circuit relay on the
// public host, then punch a WebRTC connection (STUN from the public member), and asks
// between them keep working once the public host is gone. Then one home stops (SIGSTOP):
// the other, which reaches it only over WebRTC, judges it stalled from its probe stream
// (src/node/probe-streams.ts), not 6 s later from its expired capacity adverts.
// Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { shortPeerId } from '../../src/util/peer-id-text.js'
import { waitFor } from '../support/wait.js'
import { stopAll, type StemProcess } from '../support/stem-process.js'
import { counterAcross, dumpIfFailed, netnsLayoutOrSkip, nsOf, pathBetween, startMesh, stemIn, webrtcUpgrades, type NetnsLayout } from './netns-stem.js'

describe('WebRTC hole punching between NAT\'d homes (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  before(function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 2 })
  })
  const nodes = new Map<string, StemProcess>()
  /** the home that asks the counter, once the first test placed it */
  let asker: string | undefined
  afterEach(function () { dumpIfFailed(this, nodes) })
  after(async () => { await stopAll() })

  it('two homes end up on webrtc, and their asks keep working when the relay host is killed', async () => {
    if (layout.symmetric.includes(1) || layout.symmetric.includes(2)) assert.fail('home1 and home2 need port-preserving routers (run.sh --symmetric lists one of them)')
    await startMesh(layout, nodes, 'pub1', ['home1', 'home2'])
    const pathTo = async (h: string, other: string): Promise<string | undefined> => pathBetween(layout, nodes, h, other)

    const started = Date.now()
    await waitFor(async () => await pathTo('home1', 'home2') === 'webrtc' && await pathTo('home2', 'home1') === 'webrtc',
      { timeout: 180_000, what: 'home1 and home2 to reach each other over WebRTC' })
    console.log(`netns: homes on webrtc ${((Date.now() - started) / 1000).toFixed(1)}s after joining`)
    assert.equal(await pathTo('home1', 'pub1'), 'direct')
    const table = await stemIn(nsOf(layout, 'home1'), ['peers', '--data', nodes.get('home1')!.dataDir])
    assert.match(table.stdout, new RegExp(`${shortPeerId(nodes.get('home2')!.peerId())}\\s.*\\syes\\s+webrtc\\s`))
    // the side that dialled counted the upgrade (of two homes, the smaller id tries first)
    const succeeded = await Promise.all(['home1', 'home2'].map(async h => (await webrtcUpgrades(layout, nodes, h)).succeeded))
    assert.ok(succeeded[0] + succeeded[1] >= 1, `an upgrade counted in /metrics (home1 ${succeeded[0]}, home2 ${succeeded[1]})`)

    // the counter runs on one home, its clone on the other; the other home asks it
    const { caller, increment } = await counterAcross(layout, nodes, ['home1', 'home2'])
    asker = caller
    for (let i = 1; i <= 3; i++) assert.equal(await increment(), i)

    // the relay host goes away: every ask between the homes still succeeds
    nodes.get('pub1')!.signal('SIGKILL')
    await waitFor(async () => await pathTo(caller, 'pub1') === undefined, { timeout: 60_000, what: `${caller} to notice pub1 is gone` })
    for (let i = 4; i <= 8; i++) assert.equal(await increment(), i)
    // not asserted: seen once as no connection right after the asks (see the report of issue 21)
    console.log(`netns: after the relay host died, home1 reaches home2 by ${await pathTo('home1', 'home2') ?? 'no connection'}`)
  })

  it('a home reached only over WebRTC that stops is judged stalled by its probes', async function () {
    if (asker === undefined) this.skip()
    const other = asker === 'home1' ? 'home2' : 'home1'
    await waitFor(async () => await pathBetween(layout, nodes, asker!, other) === 'webrtc', { timeout: 60_000, what: `${asker} to reach ${other} over WebRTC` })
    const watcher = nodes.get(asker)!
    const output = (): string => watcher.stdout + watcher.stderr
    const mark = output().length
    const stalled = new RegExp(`peer ${nodes.get(other)!.peerId()} is down \\(no answer to pings for \\d+ ms on an open connection: stalled\\)`)
    const started = Date.now()
    nodes.get(other)!.signal('SIGSTOP')
    try {
      await waitFor(() => stalled.test(output().slice(mark)), { timeout: 30_000, what: `${asker} to judge the stopped ${other} stalled` })
      console.log(`netns: ${asker} judged ${other} (WebRTC only) stalled ${((Date.now() - started) / 1000).toFixed(1)}s after SIGSTOP`)
    } finally {
      nodes.get(other)!.signal('SIGCONT')
    }
  })
})
