import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { createMesh, type Mesh } from '../../src/mesh/mesh.js'
import { generateMeshKey, type MeshConfig } from '../../src/mesh/mesh-config.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createFrameSigner, Frame } from '../../src/wire/frame.js'
import { encodeAdvert, type CapacityAdvert } from '../../src/mesh/capacity.js'
import { setLogLevel, setLogSink } from '../../src/util/logger.js'
import { waitFor } from '../support/wait.js'

const contributed = { cpu: 2, memory: 2 * 2 ** 30, cells: 50 }

describe('mesh (in-process libp2p nodes over TCP)', function () {
  this.timeout(120_000)
  let nodes: Mesh[] = []

  async function node (mesh: MeshConfig, bootstrap: string[] = [], interval = 2000): Promise<Mesh> {
    const m = await createMesh({ privateKey: await createEd25519Key(), mesh, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, contributed, capacityInterval: interval })
    nodes.push(m)
    await m.start()
    return m
  }

  before(() => { setLogLevel('silent') })
  after(() => { setLogLevel('info') })
  afterEach(async () => {
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    nodes = []
  })

  it('nodes that know only the bootstrap find each other through the DHT and see all capacity', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const first = await node(mesh)
    const rest: Mesh[] = []
    for (let i = 0; i < 4; i++) rest.push(await node(mesh, [first.addresses()[0]]))
    const all = [first, ...rest]
    await waitFor(() => all.every(n => n.capacity.view.size === 4), { timeout: 60_000, what: 'every view to list the 4 others' })
    for (const n of all) {
      for (const entry of n.capacity.view.list()) assert.deepEqual(entry.capacity, contributed)
    }
    // the last node was told only about the first: any other direct connection came from the DHT
    const last = rest[3]
    await waitFor(() => [...last.connectedPeers()].some(id => id !== first.peerId), { timeout: 60_000, what: 'a direct connection learned through the DHT' })

    rest[0].capacity.setContributed({ memory: 2 ** 30 })
    await waitFor(() => all.filter(n => n !== rest[0]).every(n => n.capacity.view.get(rest[0].peerId)?.capacity.memory === 2 ** 30), { what: 'the contribution change everywhere' })

    // graceful leave: dropped at once through the signed leaving advert
    const lost: string[] = []
    first.capacity.view.addEventListener('peer:lost', e => { lost.push(`${e.detail.id} ${e.detail.reason}`) })
    await rest[1].stop()
    await waitFor(() => all.filter(n => n !== rest[1]).every(n => n.capacity.view.get(rest[1].peerId) == null), { what: 'the leaver dropped everywhere' })
    assert.deepEqual(lost, [`${rest[1].peerId} left`])

    // abrupt loss (no leaving advert): expires after missed heartbeats
    await rest[2].libp2p.stop()
    await waitFor(() => lost.includes(`${rest[2].peerId} expired`), { timeout: 60_000, what: 'the vanished node to expire' })
  })

  it('announceLeaving: peers drop the node at once while it stays connected, and its later adverts do not bring it back', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const a = await node(mesh, [], 200)
    const b = await node(mesh, [a.addresses()[0]], 200)
    await waitFor(() => b.capacity.view.get(a.peerId) != null && a.capacity.view.get(b.peerId) != null, { timeout: 60_000, what: 'the two nodes to see each other' })
    await a.capacity.announceLeaving()
    await waitFor(() => b.capacity.view.get(a.peerId) == null, { what: 'the leaving node to be dropped' })
    assert.ok(a.connectedPeers().has(b.peerId), 'still connected: gossip and streams go on during the hand-over')
    a.capacity.setContributed({ cells: 7 }) // a change published while leaving says leaving too
    // let several of b's heartbeats reach a: gossip flows both ways, a stays gone at b
    const since = Date.now()
    await waitFor(() => (a.capacity.view.get(b.peerId)?.lastSeen ?? 0) > since + 600, { what: 'a to keep hearing b' })
    assert.equal(b.capacity.view.get(a.peerId), undefined)
    assert.equal(a.capacity.currentAdvert().leaving, true)
  })

  it('heartbeat samplers run before each advert, and a peer that falls silent expires when it falls due', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const a = await node(mesh, [], 200)
    const b = await node(mesh, [a.addresses()[0]], 200)
    let beats = 0
    const unhook = a.capacity.beforeHeartbeat(() => { beats++; a.capacity.setLoad({ 'app/cell#0': beats }) })
    // each heartbeat carries what its sampler set just before: b sees the count climb
    await waitFor(() => (b.capacity.view.get(a.peerId)?.load['app/cell#0'] ?? 0) >= 3, { timeout: 30_000, what: 'the sampled load to reach b' })
    unhook()
    // a stops without a leaving advert: b's expiry timer, armed for a's due time, drops it
    const lost: string[] = []
    b.capacity.view.addEventListener('peer:lost', e => { lost.push(`${e.detail.id} ${e.detail.reason}`) })
    await a.libp2p.stop()
    await waitFor(() => lost.includes(`${a.peerId} expired`), { timeout: 30_000, what: 'the silent peer to expire' })
  })

  it('a gossip stream reset while the connection stays open is repaired on that connection: adverts flow again both ways', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const a = await node(mesh, [], 200)
    const b = await node(mesh, [a.addresses()[0]], 200)
    await waitFor(() => b.capacity.view.get(a.peerId) != null && a.capacity.view.get(b.peerId) != null, { timeout: 60_000, what: 'the two nodes to see each other' })
    // a's gossip stream to b is reset (a muxer's stream error; the connection lives on). b's
    // read fails, so b drops a as a gossip peer; a keeps b with no stream to it. gossipsub
    // reopens streams only for a new connection: without the watchdog neither hears the
    // other again while they stay connected
    const outbound = (a.libp2p.services.pubsub as unknown as { streamsOutbound: Map<string, { rawStream: Stream }> }).streamsOutbound.get(b.peerId)
    assert.ok(outbound !== undefined, 'a has a gossip stream to b')
    const connections = a.libp2p.getConnections(b.libp2p.peerId).map(c => c.id)
    outbound.rawStream.abort(new Error('test: stream reset'))
    const since = Date.now()
    // 5 heartbeats past the reset: both views would have expired the other after 3
    await waitFor(() => (b.capacity.view.get(a.peerId)?.lastSeen ?? 0) > since + 1000 && (a.capacity.view.get(b.peerId)?.lastSeen ?? 0) > since + 1000, { timeout: 30_000, what: 'adverts to flow again both ways' })
    // repaired on the open connection, not by closing it (a WebRTC pair whose relay died could not reconnect)
    assert.deepEqual(a.libp2p.getConnections(b.libp2p.peerId).filter(c => c.status === 'open').map(c => c.id), connections)
  })

  it('a node with another mesh key cannot connect; the refusing node logs it once and keeps running', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const lines: string[] = []
    setLogLevel('info')
    const restore = setLogSink(line => { lines.push(line) })
    try {
      const a = await node(mesh)
      const b = await node(mesh, [a.addresses()[0]])
      const stranger = await node({ name: 'home', key: generateMeshKey() })
      for (let i = 0; i < 3; i++) {
        await assert.rejects(stranger.libp2p.dial(a.libp2p.getMultiaddrs()[0], { signal: AbortSignal.timeout(3000) }))
      }
      await waitFor(() => lines.some(l => l.includes('refused a connection from /ip4/127.0.0.1')), { what: 'the refusal to be logged' })
      assert.equal(lines.filter(l => l.includes('refused a connection')).length, 1, lines.join('\n'))
      assert.equal(stranger.capacity.view.size, 0)
      assert.ok(!a.connectedPeers().has(stranger.peerId))
      await waitFor(() => a.capacity.view.get(b.peerId) != null, { what: 'the refusing node to keep working' })
    } finally {
      restore()
      setLogLevel('silent')
    }
  })

  it('forged, tampered, replayed, oversized and unsigned adverts are rejected and counted; the view is unchanged', async () => {
    const mesh = { name: 'home', key: generateMeshKey() }
    const a = await node(mesh, [], 60_000) // long heartbeats: b's entry only changes if an advert gets through
    const b = await node(mesh, [a.addresses()[0]], 60_000)
    await waitFor(() => a.capacity.view.get(b.peerId) != null, { what: 'a to see b' })
    const before = a.capacity.view.get(b.peerId)
    const bKey = await createEd25519Key()
    const mallory = createFrameSigner(await createEd25519Key())
    const advertFor = (peer: string, extra: Partial<CapacityAdvert> = {}): Uint8Array => encodeAdvert({
      peer, addrs: [], contributed: { cpu: 64, memory: 2 ** 40, cells: 1000 }, free: { cpu: 64, memory: 2 ** 40, cells: 1000 }, version: BigInt(Date.now() + 1e9), leaving: false, interval: 1000, ...extra
    })
    const publish = async (bytes: Uint8Array): Promise<void> => { await b.libp2p.services.pubsub.publish(a.capacity.topic, bytes) }

    // forged: mallory claims to be b
    await publish(mallory.sign('capacity', advertFor(b.peerId)))
    // forged: mallory puts b's key in the sender field
    const forged = Frame.decode(mallory.sign('capacity', advertFor(b.peerId)))
    await publish(Frame.encode({ ...forged, sender: new Uint8Array(createFrameSigner(bKey).sender) }))
    // tampered: a valid frame of mallory's with its payload changed
    const valid = Frame.decode(mallory.sign('capacity', advertFor(mallory.peerId)))
    await publish(Frame.encode({ ...valid, capacity: new Uint8Array(advertFor(mallory.peerId, { leaving: true })) }))
    // unsigned
    await publish(Frame.encode({ ...valid, signature: new Uint8Array(0) }))
    // oversized
    await publish(mallory.sign('capacity', advertFor(mallory.peerId, { addrs: Array.from({ length: 30 }, (_, i) => `/dns4/${'x'.repeat(600)}${i}.example/tcp/1`) })))

    await waitFor(() => {
      const r = a.capacity.rejections()
      return r['peer-mismatch'] === 1 && r['bad-signature'] === 2 && r.unsigned === 1 && r.oversized === 1
    }, { what: `rejections to be counted (got ${JSON.stringify(a.capacity.rejections())})` })

    // replayed: gossip drops exact duplicates itself, so the replay goes straight to the receive path
    const replay = mallory.sign('capacity', advertFor(mallory.peerId))
    assert.deepEqual(a.capacity.receive(replay), { result: 'applied' })
    assert.deepEqual(a.capacity.receive(replay), { result: 'rejected', reason: 'replayed' })
    assert.equal(a.capacity.rejections().replayed, 1)

    assert.deepEqual(a.capacity.view.get(b.peerId), before)
    assert.equal(a.capacity.view.get(mallory.peerId)?.capacity.cpu, 64, 'only the genuine advert of mallory got in')
  })
})
