// Two homes behind their own port-preserving NAT routers (MASQUERADE) and one public host
// (scripts/netns/run.sh): the homes first reach each other through a circuit relay on the
// public host, then punch a WebRTC connection (STUN from the public member), and asks
// between them keep working once the public host is gone. Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { PeersResponse } from '../../src/api/types.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { shortPeerId } from '../../src/util/peer-id-text.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, repoRoot, stopAll, type StemProcess } from '../support/stem-process.js'
import { httpIn, netnsLayoutOrSkip, spawnStemIn, stemIn, stemJsonIn, type NetnsLayout } from './netns-stem.js'

const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')

describe('WebRTC hole punching between NAT\'d homes (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  before(function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 2 })
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return
    for (const [host, p] of nodes) console.log(`--- ${host} (${p.running ? 'running' : `exited ${p.exitCode}`}) stderr:\n${p.stderr.split('\n').slice(-40).join('\n')}`)
  })
  after(async () => { await stopAll() })

  it('two homes end up on webrtc, and their asks keep working when the relay host is killed', async () => {
    const ns = (host: string): string => `${layout.prefix}-${host}`
    nodes.set('pub1', await (await spawnStemIn(ns('pub1'), ['start', '--cells', '0'])).ready())
    const invite = await stemIn(ns('pub1'), ['invite', '--data', nodes.get('pub1')!.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    for (const h of ['home1', 'home2']) nodes.set(h, await spawnStemIn(ns(h), ['join', invite.stdout.trim()]))
    await Promise.all([...nodes.values()].map(async p => p.ready()))
    const ids = new Map([...nodes].map(([h, p]) => [h, p.peerId()]))
    const data = (h: string): string => nodes.get(h)!.dataDir
    const pathTo = async (h: string, other: string): Promise<string | undefined> =>
      (await stemJsonIn<PeersResponse>(ns(h), ['peers', '--data', data(h)])).peers.find(e => e.id === ids.get(other))?.path

    const started = Date.now()
    await waitFor(async () => await pathTo('home1', 'home2') === 'webrtc' && await pathTo('home2', 'home1') === 'webrtc',
      { timeout: 180_000, what: 'home1 and home2 to reach each other over WebRTC' })
    console.log(`netns: homes on webrtc ${((Date.now() - started) / 1000).toFixed(1)}s after joining`)
    assert.equal(await pathTo('home1', 'pub1'), 'direct')
    const table = await stemIn(ns('home1'), ['peers', '--data', data('home1')])
    assert.match(table.stdout, new RegExp(`${shortPeerId(ids.get('home2')!)}\\s.*\\syes\\s+webrtc\\s`))
    // the side that dialled counted the upgrade (of two homes, the smaller id tries first)
    const succeeded = await Promise.all(['home1', 'home2'].map(async h => {
      const r = await httpIn(ns(h), 'GET', `${await apiUrlOf(data(h))}/metrics`)
      return Number(/^stem_webrtc_upgrades_total\{result="succeeded",reason=""\} (\d+)$/m.exec(r.body)?.[1] ?? 0)
    }))
    assert.ok(succeeded[0] + succeeded[1] >= 1, `an upgrade counted in /metrics (home1 ${succeeded[0]}, home2 ${succeeded[1]})`)

    // the counter runs on one home, its clone on the other; the other home asks it
    const published = await stemJsonIn<{ app: string }>(ns('home2'), ['publish', manifest, '--data', data('home2')])
    assert.equal(published.app, 'counter')
    const placed = await waitFor(async () => {
      const cells = (await stemJsonIn<AppCellsListing[]>(ns('home1'), ['cells', 'counter', '--data', data('home1')]))[0]?.cells ?? []
      return cells.length === 1 && cells[0].state === 'transformed' && cells[0].clones.length === 1 && cells[0]
    }, { timeout: 120_000, what: 'the counter and its clone to be placed' })
    const caller = placed.node === ids.get('home1') ? 'home2' : 'home1'
    const call = async (): Promise<number> => {
      const r = await stemIn(ns(caller), ['call', 'counter/counter', 'increment', '1', '--data', data(caller)])
      assert.equal(r.code, 0, `stem call from ${caller}: ${r.stderr}`)
      return (JSON.parse(r.stdout) as { count: number }).count
    }
    // the first ask may still wait for the app's routes to reach the caller
    await waitFor(async () => (await stemIn(ns(caller), ['call', 'counter/counter', 'get', '--data', data(caller)])).code === 0,
      { timeout: 60_000, what: `${caller} to reach the counter` })
    for (let i = 1; i <= 3; i++) assert.equal(await call(), i)

    // the relay host goes away: every ask between the homes still succeeds
    nodes.get('pub1')!.signal('SIGKILL')
    await waitFor(async () => await pathTo(caller, 'pub1') === undefined, { timeout: 60_000, what: `${caller} to notice pub1 is gone` })
    for (let i = 4; i <= 8; i++) assert.equal(await call(), i)
    // not asserted: seen once as no connection right after the asks (see the report of issue 21)
    console.log(`netns: after the relay host died, home1 reaches home2 by ${await pathTo('home1', 'home2') ?? 'no connection'}`)
  })
})
