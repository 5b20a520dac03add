// A node with another mesh key, pointed at the mesh's public member (scripts/netns/run.sh):
// pnet turns its handshake into noise, so it never becomes a member. The mesh's `stem
// peers` never list it, it lists no member, and both ends say why in one line: it says the
// public member refused it (a wrong or stale invite), the public member that it refused a
// node with another mesh key. Run by `npm run test:netns`.
import assert from 'node:assert/strict'
import { decodeInvite, encodeInvite } from '../../src/mesh/invite.js'
import { generateMeshKey } from '../../src/mesh/mesh-config.js'
import { waitFor } from '../support/wait.js'
import { stopAll, type StemProcess } from '../support/stem-process.js'
import { dumpIfFailed, netnsLayoutOrSkip, peersOf, pubAddress, startMesh, STEM_PORT, type NetnsLayout } from './netns-stem.js'

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('a node with the wrong mesh key gets nowhere (network namespaces)', function () {
  this.timeout(600_000)
  let layout: NetnsLayout
  before(function () {
    layout = netnsLayoutOrSkip(this, { pubs: 1, homes: 3 })
  })
  const nodes = new Map<string, StemProcess>()
  afterEach(function () { dumpIfFailed(this, nodes) })
  after(async () => { await stopAll() })

  it('an invite with a tampered key: refused by the public member, never a member, a clear line on both sides', async () => {
    const started = Date.now()
    // home1 joins with the invite, home3 with the same invite under another mesh key
    await startMesh(layout, nodes, 'pub1', ['home1', 'home3'], (h, token) => h === 'home3' ? encodeInvite({ ...decodeInvite(token), key: generateMeshKey() }) : token)
    const id = (h: string): string => nodes.get(h)!.peerId()
    const members = ['pub1', 'home1']
    const intruder = nodes.get('home3')!
    const pubAddr = `/ip4/${pubAddress(layout, 1)}/tcp/${STEM_PORT}/p2p/${id('pub1')}`
    const natWan = `/ip4/${layout.inet}.0.23`

    // "never": checked on every round until both ends explained the refusal, and once after
    const neverMember = async (): Promise<void> => {
      for (const m of members) {
        const seen = (await peersOf(layout, nodes, m)).peers.find(e => e.id === id('home3'))
        assert.equal(seen, undefined, `${m} lists the node with the wrong key: ${JSON.stringify(seen)}`)
      }
      const listed = (await peersOf(layout, nodes, 'home3')).peers.filter(e => members.some(m => e.id === id(m)))
      assert.deepEqual(listed.map(e => e.id), [], 'the node with the wrong key lists no member')
    }
    await waitFor(async () => {
      await neverMember()
      return (await peersOf(layout, nodes, 'pub1')).peers.some(e => e.id === id('home1'))
    }, { timeout: 60_000, what: 'home1 to be a member (the mesh works)' })
    await waitFor(async () => {
      await neverMember()
      return new RegExp(`bootstrap ${escape(pubAddr)}: peer refused the connection: usually a wrong or stale invite \\(another mesh key`).test(intruder.stderr) &&
        new RegExp(`refused a connection from ${escape(natWan)}: its handshake failed .* a node with another mesh key\\?`).test(nodes.get('pub1')!.stderr)
    }, { timeout: 120_000, what: 'the node with the wrong key and the public member to explain the refusal' })
    await neverMember()
    assert.match(intruder.stdout, /^mesh: home \(not joined yet/m)
    assert.doesNotMatch(intruder.stdout + intruder.stderr, /joined mesh/)
    console.log(`netns: refused and explained after ${((Date.now() - started) / 1000).toFixed(1)}s:\n  ${intruder.stderr.split('\n').find(l => l.includes(pubAddr))}\n  ${nodes.get('pub1')!.stderr.split('\n').find(l => l.includes('another mesh key'))}`)
  })
})
