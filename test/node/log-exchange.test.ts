// /stem/<mesh>/logs/1 between real libp2p nodes: gather merges every node's lines in time
// order; a node's answer only counts for its own cells (forged lines naming another node
// are dropped); a node that cannot answer is named in `missing`; a refused query comes
// back as its one-line reason; a malformed request, or one signed by another key than the
// connection's, gets no answer.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { readOne, writeFrame } from '../../src/messaging/framing.js'
import { createCellLogs, type CellLogs } from '../../src/node/cell-logs.js'
import { createLogExchange, type LogExchange } from '../../src/node/log-exchange.js'
import { encodeLogsRequest } from '../../src/node/log-codec.js'
import { MESH, createLibp2pNode, type TestLibp2p } from '../messaging/helpers.js'

interface Node { libp2p: TestLibp2p, id: string, logs: CellLogs, exchange: LogExchange }

describe('node: the logs protocol between real libp2p nodes', function () {
  this.timeout(60_000)
  let dir = ''
  const nodes: Node[] = []
  let peers: string[] = []

  const node = async (): Promise<Node> => {
    const key = await createEd25519Key()
    const libp2p = await createLibp2pNode(key)
    const id = libp2p.peerId.toString()
    const logs = createCellLogs({ dataDir: await mkdtemp(join(dir, 'n-')), node: id })
    await logs.start()
    const exchange = createLogExchange({ libp2p, signer: createFrameSigner(key), logs, peers: () => peers }, { mesh: MESH, timeout: 2000 })
    await exchange.start()
    return { libp2p, id, logs, exchange }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-log-exchange-'))
    nodes.push(await node(), await node(), await node())
    for (const n of nodes.slice(1)) await nodes[0].libp2p.dial(n.libp2p.getMultiaddrs()[0])
    peers = nodes.map(n => n.id)
  })
  after(async () => {
    for (const n of nodes) { await n.exchange.stop(); await n.logs.stop(); await n.libp2p.stop() }
    await rm(dir, { recursive: true, force: true })
  })

  it('gathers every node\'s lines of the app, merged in time order, and names a node that does not answer', async () => {
    const [a, b, c] = nodes
    b.logs.append({ address: 'shop/orders#0', revision: 'r', kind: 'log', text: 'b1' })
    a.logs.append({ address: 'shop/orders#1', revision: 'r', kind: 'log', text: 'a1' })
    c.logs.append({ address: 'shop/pricing#0', revision: 'r', kind: 'error', text: 'c1', method: 'quote', stack: 'at Pricing.quote (pricing.ts:4:9)' })
    b.logs.append({ address: 'other/x#0', revision: 'r', kind: 'log', text: 'other app' })
    const all = await a.exchange.gather({ app: 'shop' })
    assert.deepEqual(all.missing, [])
    assert.deepEqual(new Set(all.lines.map(l => `${l.text}@${l.node}`)), new Set([`b1@${b.id}`, `a1@${a.id}`, `c1@${c.id}`]))
    assert.ok(all.lines.every((l, i) => i === 0 || all.lines[i - 1].ts <= l.ts))
    assert.equal(all.lines.find(l => l.text === 'c1')?.stack, 'at Pricing.quote (pricing.ts:4:9)')
    assert.deepEqual((await a.exchange.gather({ app: 'shop', cell: 'orders#0' })).lines.map(l => l.text), ['b1'])

    const ghost = (await createEd25519Key())
    peers = [...nodes.map(n => n.id), createFrameSigner(ghost).peerId]
    try {
      const partial = await a.exchange.gather({ app: 'shop' })
      assert.equal(partial.lines.length, 3)
      assert.equal(partial.missing.length, 1)
      assert.ok(partial.missing[0].startsWith(createFrameSigner(ghost).peerId))
    } finally {
      peers = nodes.map(n => n.id)
    }
  })

  it('drops lines a node claims for another node, and passes on a refused query as its reason', async () => {
    const [a, b] = nodes
    // a node whose buffer holds lines naming a as their node (as a forging node would answer)
    const key = await createEd25519Key()
    const libp2p = await createLibp2pNode(key)
    const forged = createCellLogs({ dataDir: await mkdtemp(join(dir, 'f-')), node: a.id })
    forged.append({ address: 'shop/orders#0', revision: 'r', kind: 'log', text: 'forged' })
    const forger = createLogExchange({ libp2p, signer: createFrameSigner(key), logs: forged, peers: () => [] }, { mesh: MESH })
    await forger.start()
    try {
      await a.libp2p.dial(libp2p.getMultiaddrs()[0])
      assert.deepEqual(await a.exchange.fetch(libp2p.peerId.toString(), { app: 'shop' }), [])
    } finally {
      await forger.stop()
      await libp2p.stop()
    }
    await assert.rejects(a.exchange.fetch(b.id, { app: 'shop', limit: 5000 }), /logs: limit must be 1…2000/)
  })

  it('answers nothing to a malformed request or one signed by another key than the connection\'s', async () => {
    const [a, b] = nodes
    const before = b.exchange.rejected()
    for (const bytes of [new Uint8Array([1, 2, 3]), createFrameSigner(await createEd25519Key()).sign('leaders', encodeLogsRequest({ app: 'shop' }))]) {
      const stream = await a.libp2p.dialProtocol(peerIdFromString(b.id), b.exchange.protocol)
      const answer = readOne(stream, 1024 * 1024, AbortSignal.timeout(5000)).then(() => 'answered', (err: Error) => err.message)
      writeFrame(stream, bytes)
      assert.notEqual(await answer, 'answered')
    }
    assert.ok(b.exchange.rejected() >= before + 2)
  })
})
