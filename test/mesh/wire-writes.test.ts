// Socket writes per message over real TCP libp2p connections (scripts/patches): a small
// message and its echo cost one write each way, not four. Unpatched, yamux answers every
// data frame with a WINDOW_UPDATE, and noise writes each frame's length prefix and
// ciphertext separately (pnet, on the mesh's own stack, merges those two).
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { createLibp2p } from 'libp2p'
import type { Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p } from '../../src/mesh/libp2p.js'
import { generateMeshKey } from '../../src/mesh/mesh-config.js'
import { encodeFrame, readFrames } from '../../src/messaging/framing.js'

const ECHO = '/test/echo/1'
const MESSAGES = 200
const SINK = '/test/sink/1'

/** Counts write() calls on the TCP sockets whose either end is one of `ports`. */
function countSocketWrites (ports: () => number[]): { count: () => number, restore: () => void } {
  const original = Socket.prototype.write
  let writes = 0
  Socket.prototype.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    const watched = ports()
    if (watched.includes(this.localPort ?? -1) || watched.includes(this.remotePort ?? -1)) writes++
    return original.apply(this, args)
  } as Socket['write']
  return { count: () => writes, restore: () => { Socket.prototype.write = original } }
}

/** The TCP port `node` listens on (its first direct address). */
function portOf (node: Libp2p): number {
  const direct = node.getMultiaddrs().map(m => m.toString()).find(m => m.includes('/tcp/') && !m.includes('p2p-circuit'))
  if (direct === undefined) throw new Error('no TCP listen address')
  return Number(direct.split('/tcp/')[1].split('/')[0])
}

/** An echo of b over one stream from a: `run(n)` sends n messages of 64 bytes one at a time, each after the last is back. */
async function echo (a: Libp2p, b: Libp2p): Promise<(messages: number) => Promise<void>> {
  await b.handle(ECHO, stream => {
    readFrames(stream, 1 << 20, { onFrame: f => { stream.send(encodeFrame(f)) }, onOversized: () => {}, onClose: () => {} })
  })
  const stream: Stream = await a.dialProtocol(b.peerId, ECHO)
  let next: (() => void) | undefined
  readFrames(stream, 1 << 20, { onFrame: () => { next?.() }, onOversized: () => {}, onClose: () => {} })
  const payload = encodeFrame(new Uint8Array(64).fill(7))
  return async messages => {
    for (let i = 0; i < messages; i++) {
      const { promise, resolve } = Promise.withResolvers<void>()
      next = resolve
      stream.send(payload)
      await promise
    }
  }
}

/** MESSAGES echoes over a connected pair take 2 socket writes each, plus at most `slack` in all. */
async function assertWritesPerEcho (a: Libp2p, b: Libp2p, slack: number): Promise<void> {
  const echoes = await echo(a, b)
  await echoes(10) // the stream is open and negotiated
  const writes = countSocketWrites(() => [portOf(a), portOf(b)])
  try {
    await echoes(MESSAGES)
  } finally {
    writes.restore()
  }
  assert.ok(writes.count() <= 2 * MESSAGES + slack, `${writes.count()} socket writes for ${MESSAGES} echoes`)
  assert.ok(writes.count() >= 2 * MESSAGES, `${writes.count()} socket writes for ${MESSAGES} echoes: not counting the connection's socket`)
}

async function plainNode (): Promise<Libp2p> {
  return await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}

describe('socket writes per message on libp2p (patched yamux and noise)', function () {
  this.timeout(60_000)
  const started: Libp2p[] = []
  afterEach(async () => { await Promise.all(started.splice(0).map(async n => { await n.stop() })) })

  it('tcp + noise + yamux: one write per message each way, no window update per frame', async () => {
    const a = await plainNode()
    const b = await plainNode()
    started.push(a, b)
    await a.dial(b.getMultiaddrs()[0])
    // 2 per echo, plus room for a window update or a keep-alive ping; unpatched: 8 per echo
    await assertWritesPerEcho(a, b, 10)
  })

  it("the mesh's own stack (pnet, noise, yamux): one write per message each way", async () => {
    const mesh = { name: 'writes', key: generateMeshKey() }
    const node = async (): Promise<Libp2p> => {
      const n = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), mesh, listen: ['/ip4/127.0.0.1/tcp/0'] })
      await n.start()
      started.push(n)
      return n
    }
    const a = await node()
    const b = await node()
    await a.dial(b.getMultiaddrs().find(m => !m.toString().includes('p2p-circuit')) ?? b.getMultiaddrs()[0])
    // 2 per echo, plus room for the services' own traffic (identify, DHT, gossipsub); unpatched: 4 per echo
    await assertWritesPerEcho(a, b, 60)
  })

  it('a bulk transfer still gets its window updates: 16 MiB in 64 KiB writes arrive whole', async () => {
    const a = await plainNode()
    const b = await plainNode()
    started.push(a, b)
    const total = 16 * 1024 * 1024
    let received = 0
    const { promise: all, resolve } = Promise.withResolvers<void>()
    await b.handle(SINK, stream => {
      stream.addEventListener('message', evt => { received += evt.data.byteLength; if (received === total) resolve() })
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], SINK)
    const chunk = new Uint8Array(64 * 1024).fill(1)
    for (let sent = 0; sent < total; sent += chunk.byteLength) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`stalled: ${received} of ${total} bytes arrived in 45 s`)) }, 45_000) })
    try {
      await Promise.race([all, stalled])
    } finally {
      clearTimeout(timer)
    }
    assert.equal(received, total)
  })
})

