// Messaging benchmarks, each beside raw libp2p over the same kind of connection in the
// same run (TCP + Noise + Yamux on 127.0.0.1, two in-process nodes, cells in real cell
// host processes):
//   remote-ask        sequential asks between nodes vs a raw length-prefixed echo
//   remote-ask-vs-floor the same asks vs that echo doing only what an ask cannot do
//                     without: sign and verify each frame, ask the cell in its cell host
//                     a method that changes no state (the cell-host round trip and the
//                     isolate entry, no state write)
//   remote-ask-concurrency asks/s with 1, 8, 64 and 256 in flight vs the raw echo with
//                     as many in flight on its one stream
//   remote-tell       batched one-way messages vs raw libp2p with one write per message
//   frame-sign-verify one signed frame carrying one ask, signed and verified, vs a bare
//                     Ed25519 sign + verify of the same number of bytes by the same
//                     implementation (src/wire/ed25519.ts): the floor per hop
//   remote-transform  "transform" sent → cell ready on a peer that fetches a 100 KB bundle,
//                     vs the same transform with the bundle already on that node
// Each figure is the mean of rounds that alternate Stem and its baseline, after a warm-up
// of both (the machine's load varies from one second to the next).
import type { Libp2p, Stream } from '@libp2p/interface'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCellRuntime } from '../src/cells/runtime.js'
import type { CellRuntime } from '../src/cells/runtime.js'
import { signBundle } from '../src/cells/bundle.js'
import type { CellBundle } from '../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../src/cells/limits.js'
import { createEd25519Key } from '../src/wire/keys.js'
import type { PrivateKey } from '../src/wire/keys.js'
import { createFrameSigner, createFrameVerifier } from '../src/wire/frame.js'
import type { FrameSigner } from '../src/wire/frame.js'
import { ed25519 } from '../src/wire/ed25519.js'
import { encodeBatch, encodeEnvelope } from '../src/messaging/envelope-codec.js'
import { setLogLevel } from '../src/util/logger.js'
import { createCellMessaging, createStaticDirectory, createBundleExchange, createBundleStore, MessagingError } from '../src/messaging/index.js'
import type { CellMessaging, BundleExchange } from '../src/messaging/index.js'
import { readFrames, encodeFrame } from '../src/messaging/framing.js'
import { meanLatency, timeInFlight, timeSequential } from './support/stats.js'
import type { Latency } from './support/stats.js'
import { createPlainLibp2p } from './support/plain-libp2p.js'
import { rawEcho } from './support/echo.js'

setLogLevel('silent')
const MESH = 'bench'
const SINK = '/bench/sink/1'
const SIGNED_ECHO = '/bench/signed-echo/1'

interface BenchNode { id: string, libp2p: Libp2p, runtime: CellRuntime, messaging: CellMessaging, bundles: BundleExchange, signer: FrameSigner, dir: string }

const directory = createStaticDirectory()

async function node (): Promise<BenchNode> {
  const key = await createEd25519Key()
  const dir = mkdtempSync(join(tmpdir(), 'stem-bench-'))
  const libp2p = await createPlainLibp2p(key)
  const runtime = createCellRuntime({ dataDir: join(dir, 'data') })
  runtime.start()
  const signer = createFrameSigner(key)
  const bundles = createBundleExchange({ libp2p, store: createBundleStore(join(dir, 'bundles')), signer }, { mesh: MESH })
  const messaging = createCellMessaging({ libp2p, runtime, directory, signer, bundles }, { mesh: MESH })
  await bundles.start()
  await messaging.start()
  return { id: libp2p.peerId.toString(), libp2p, runtime, messaging, bundles, signer, dir }
}

async function bundle (owner: PrivateKey, cell: string, code: string): Promise<CellBundle> {
  return await signBundle({ app: 'bench', cell, entry: `${cell}.js`, code, limits: { ...DEFAULT_LIMITS, mailbox: 10_000 } }, owner)
}

const COUNTER = 'export default class Counter { count = 0; increment (by = 1) { this.count += by; return this.count } get () { return this.count } }'

const ms = (n: number): string => n.toFixed(3)
const rate = (n: number): string => String(Math.round(n))

/**
 * What no remote ask can do without, and nothing else: a raw length-prefixed echo where
 * each side signs its frame and verifies the other's (the same signer and verifier as
 * Stem's frames), and B asks the cell on its node (its cell host) before echoing. The
 * method asked (`get`) enters the isolate and changes no state: no state write, which an
 * ask can keep off its reply's path.
 */
async function signedCellEcho (a: BenchNode, b: BenchNode, size: number): Promise<() => Promise<void>> {
  const kind = 'cell'
  const verifyAtA = createFrameVerifier({ replayWindow: 1 << 16 })
  const verifyAtB = createFrameVerifier({ replayWindow: 1 << 16 })
  await b.libp2p.handle(SIGNED_ECHO, stream => {
    readFrames(stream, 1 << 20, {
      onFrame: f => {
        if (!verifyAtB.verify(f, { remotePeer: a.id, expect: kind }).ok) throw new Error('signed echo: B rejected a frame')
        b.runtime.askJson('bench/counter#0', 'get', '[]').then(text => { stream.send(encodeFrame(b.signer.sign(kind, new TextEncoder().encode(text)))) }, () => { stream.abort(new Error('ask failed')) })
      },
      onOversized: () => {},
      onClose: () => {}
    })
  })
  const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, SIGNED_ECHO)
  let waiting: (() => void) | undefined
  readFrames(stream, 1 << 20, {
    onFrame: f => {
      if (!verifyAtA.verify(f, { remotePeer: b.id, expect: kind }).ok) throw new Error('signed echo: A rejected a frame')
      waiting?.()
    },
    onOversized: () => {},
    onClose: () => {}
  })
  const payload = new Uint8Array(size).fill(1)
  return async () => {
    const { promise, resolve } = Promise.withResolvers<void>()
    waiting = resolve
    stream.send(encodeFrame(a.signer.sign(kind, payload)))
    await promise
  }
}

/** Raw libp2p: one stream.send per message (respecting drain); B counts frames. Returns a round: msg/s for `count` messages. */
async function rawTell (a: BenchNode, b: BenchNode, message: Uint8Array): Promise<(count: number) => Promise<number>> {
  let received = 0
  let target = 0
  let arrived: (() => void) | undefined
  await b.libp2p.handle(SINK, stream => {
    // the raw reader never pauses: let a burst fit instead of aborting the stream
    stream.maxReadBufferLength = 256 * 1024 * 1024
    readFrames(stream, 1 << 20, { onFrame: () => { if (++received === target) arrived?.() }, onOversized: () => {}, onClose: () => {} })
  })
  const stream: Stream = await a.libp2p.dialProtocol(b.libp2p.peerId, SINK)
  const framed = encodeFrame(message)
  return async count => {
    const { promise: all, resolve } = Promise.withResolvers<void>()
    arrived = resolve
    target = received + count
    const start = performance.now()
    for (let i = 0; i < count; i++) {
      if (!stream.send(framed)) await stream.onDrain()
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([all, new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`raw tell: ${received} of ${target} arrived in 90 s`)) }, 90_000) })])
    clearTimeout(timer)
    return count / ((performance.now() - start) / 1000)
  }
}

async function remoteTell (a: BenchNode, count: number): Promise<number> {
  const before = await a.messaging.ask('bench/counter#0', 'get') as number
  const start = performance.now()
  for (let i = 0; i < count;) {
    try {
      a.messaging.tellJson('bench/counter#0', 'increment', '[1]')
      i++
    } catch (err) {
      if (!(err instanceof MessagingError) || err.code !== 'backpressure') throw err
      await a.messaging.whenWritable('bench/counter#0')
    }
  }
  // asks and tells to one node travel in order on one stream: this answer follows them all
  const after = await a.messaging.ask('bench/counter#0', 'get', [], { deadline: Date.now() + 120_000 }) as number
  const seconds = (performance.now() - start) / 1000
  if (after - before !== count) throw new Error(`remote-tell: ${after - before} of ${count} tells arrived`)
  return count / seconds
}

async function remoteTransform (a: BenchNode, b: BenchNode, owner: PrivateKey, rounds: number): Promise<{ remote: number, local: number }> {
  const pad = 'x'.repeat(100 * 1024)
  const code = (i: number, kind: string): string => `const PAD = "${pad}";\nexport default class Big${kind}${i} { get () { return PAD.length } }`
  let remote = 0
  let local = 0
  for (let i = 0; i < rounds; i++) {
    // remote: a fresh bundle (new content id) that only Alice holds
    const shipped = await bundle(owner, `r${i}`, code(i, 'R'))
    await a.bundles.publish(shipped)
    let t = performance.now()
    await a.messaging.transformRemote(b.id, { address: `bench/r${i}#0`, bundle: shipped.hash, owner: shipped.owner })
    remote += performance.now() - t
    // baseline: the same size of bundle, already on Bob's node
    const here = await bundle(owner, `l${i}`, code(i, 'L'))
    t = performance.now()
    await b.runtime.transform(`bench/l${i}#0`, here, { owner: here.owner })
    local += performance.now() - t
  }
  return { remote: remote / rounds, local: local / rounds }
}

/** µs per frame: sign + verify of a frame carrying one ask, and raw Ed25519 over as many bytes. */
async function frameCrypto (key: PrivateKey, rounds: number, count: number): Promise<{ frame: number, raw: number }> {
  const signer = createFrameSigner(key)
  const verifier = createFrameVerifier({ replayWindow: 1 << 16 })
  const payload = encodeBatch([encodeEnvelope({ ask: { id: new Uint8Array(16).fill(7), to: 'bench/counter#0', method: 'increment', args: '[1]', deadline: BigInt(Date.now()), from: '' } })])
  const sample = signer.sign('cell', payload)
  const rawSign = ed25519.signer(key.raw.subarray(0, 32), key.publicKey.raw)
  const rawVerify = ed25519.verifier(key.publicKey.raw)
  const data = sample.subarray(0, sample.byteLength - 66)
  let frame = 0
  let raw = 0
  for (let r = 0; r < rounds; r++) {
    let t = performance.now()
    for (let i = 0; i < count; i++) {
      if (!verifier.verify(signer.sign('cell', payload), { remotePeer: signer.peerId, expect: 'cell' }).ok) throw new Error('frame-sign-verify: a frame was rejected')
    }
    frame += (performance.now() - t) * 1000 / count / rounds
    t = performance.now()
    for (let i = 0; i < count; i++) {
      if (!rawVerify(data, rawSign(data))) throw new Error('frame-sign-verify: raw verify failed')
    }
    raw += (performance.now() - t) * 1000 / count / rounds
  }
  return { frame, raw }
}

const owner = await createEd25519Key()
const a = await node()
const b = await node()
try {
  await a.libp2p.dial(b.libp2p.getMultiaddrs()[0])
  await b.runtime.transform('bench/counter#0', await bundle(owner, 'counter', COUNTER), { owner: owner.publicKey })
  directory.set('bench/counter#0', b.id)

  const ROUNDS = 3
  const askCount = 1000
  const echo = await rawEcho(a.libp2p, b.libp2p, 64)
  const remoteAsk = async (): Promise<string> => await a.messaging.askJson('bench/counter#0', 'increment', '[1]')
  const localAsk = async (): Promise<string> => await b.runtime.askJson('bench/counter#0', 'increment', '[1]')
  const floorAsk = await signedCellEcho(a, b, 64)
  const raws: Latency[] = []
  const asks: Latency[] = []
  const locals: Latency[] = []
  const floors: Latency[] = []
  for (let r = 0; r < ROUNDS; r++) {
    raws.push(await timeSequential(echo, askCount, r === 0 ? 300 : 20))
    asks.push(await timeSequential(remoteAsk, askCount, r === 0 ? 300 : 20))
    locals.push(await timeSequential(localAsk, askCount, r === 0 ? 300 : 20))
    floors.push(await timeSequential(floorAsk, askCount, r === 0 ? 300 : 20))
  }
  const raw = meanLatency(raws)
  const ask = meanLatency(asks)
  const local = meanLatency(locals)
  const floor = meanLatency(floors)
  console.log(`bench remote-ask: ${rate(ask.perSecond)} asks/s p50 ${ms(ask.p50)} ms p99 ${ms(ask.p99)} ms (raw libp2p echo ${rate(raw.perSecond)}/s p50 ${ms(raw.p50)} ms p99 ${ms(raw.p99)} ms, ratio ${(ask.perSecond / raw.perSecond).toFixed(2)})`)
  // the same asks made on the cell's own node: what the cell host round trip costs by itself
  // the same ask beside the parts it cannot do without (2 signatures, 2 verifications, the cell host round trip, the isolate entry)
  console.log(`bench remote-ask-vs-floor: ${rate(ask.perSecond)} asks/s p50 ${ms(ask.p50)} ms (raw libp2p echo signing and verifying each frame and asking the cell host a read-only method ${rate(floor.perSecond)}/s p50 ${ms(floor.p50)} ms, ratio ${(ask.perSecond / floor.perSecond).toFixed(2)})`)
  console.log(`bench remote-ask-vs-local: ${rate(ask.perSecond)} asks/s p50 ${ms(ask.p50)} ms (same cell asked on its own node ${rate(local.perSecond)} asks/s p50 ${ms(local.p50)} ms, ratio ${(ask.perSecond / local.perSecond).toFixed(2)})`)

  // `node dist/bench/messaging.js remote-ask`: the asks alone (bench/runtime.ts)
  if (!process.argv.includes('remote-ask')) {
    // asks and raw echoes with as many in flight, alternating, after a warm-up of both
    for (const inFlight of [1, 8, 64, 256]) {
      const count = Math.max(1000, inFlight * 40)
      await timeInFlight(remoteAsk, inFlight, count / 4)
      await timeInFlight(echo, inFlight, count / 4)
      let askRate = 0
      let echoRate = 0
      for (let r = 0; r < ROUNDS; r++) {
        askRate += await timeInFlight(remoteAsk, inFlight, count) / ROUNDS
        echoRate += await timeInFlight(echo, inFlight, count) / ROUNDS
      }
      console.log(`bench remote-ask-concurrency: ${rate(askRate)} asks/s with ${inFlight} in flight (raw libp2p echo ${rate(echoRate)} msg/s with ${inFlight} in flight, ratio ${(askRate / echoRate).toFixed(2)})`)
    }

    const tellCount = 30_000
    const rawRound = await rawTell(a, b, new TextEncoder().encode('{"to":"bench/counter#0","method":"increment","args":"[1]"}'))
    // warm-up of both paths
    await rawRound(10_000)
    await remoteTell(a, 10_000)
    let rawRate = 0
    let tellRate = 0
    for (let r = 0; r < ROUNDS; r++) {
      rawRate += await rawRound(tellCount) / ROUNDS
      tellRate += await remoteTell(a, tellCount) / ROUNDS
    }
    console.log(`bench remote-tell: ${rate(tellRate)} msg/s (raw libp2p one write per message ${rate(rawRate)} msg/s, ratio ${(tellRate / rawRate).toFixed(2)})`)

    const crypto = await frameCrypto(owner, 3, 500)
    console.log(`bench frame-sign-verify: ${crypto.frame.toFixed(1)} µs per frame signed and verified (raw ${ed25519.name} ed25519 sign+verify ${crypto.raw.toFixed(1)} µs, ratio ${(crypto.frame / crypto.raw).toFixed(2)})`)

    const transform = await remoteTransform(a, b, owner, 5)
    console.log(`bench remote-transform: ${ms(transform.remote)} ms to a ready cell fetching a 100 KB bundle (local transform with the bundle held ${ms(transform.local)} ms, ratio ${(transform.remote / transform.local).toFixed(2)})`)
  }
} finally {
  for (const n of [a, b]) {
    await n.messaging.stop()
    await n.bundles.stop()
    await n.runtime.stop()
    await n.libp2p.stop()
    rmSync(n.dir, { recursive: true, force: true })
  }
}
