// Liveness probes over a long-lived stream (what the failure detector uses on WebRTC
// connections, whose muxer has no ping), here over real TCP libp2p connections.
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createProbeStreams, echoProbes, probeProtocol } from '../../src/node/probe-streams.js'

const PROBE_PROTOCOL = probeProtocol('test')
import { waitFor } from '../support/wait.js'

async function node (): Promise<Libp2p> {
  return await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
}

describe('node: probe streams', function () {
  this.timeout(30_000)
  let a: Libp2p
  let b: Libp2p
  let connection: Connection
  beforeEach(async () => {
    [a, b] = await Promise.all([node(), node()])
    connection = await a.dial(b.getMultiaddrs()[0])
  })
  afterEach(async () => { await Promise.all([a.stop(), b.stop()]) })

  const probeStreamsOn = (c: Connection): Stream[] => c.streams.filter(s => s.protocol === PROBE_PROTOCOL)

  it('a probe is answered by the remote echo, and every probe of a connection shares one stream', async () => {
    await b.handle(PROBE_PROTOCOL, stream => { echoProbes(stream) })
    const probes = createProbeStreams(PROBE_PROTOCOL)
    for (let i = 0; i < 20; i++) await probes.ping(connection, AbortSignal.timeout(5000))
    assert.equal(probeStreamsOn(connection).length, 1)
    assert.equal(probes.probes(connection), true)
  })

  it('a remote node that echoes nothing (stopped) leaves the probe to its deadline; an echo that comes late answers no later probe', async () => {
    let held: Stream | undefined
    let received = 0
    await b.handle(PROBE_PROTOCOL, stream => {
      held = stream
      stream.addEventListener('message', evt => { received += evt.data.byteLength })
    })
    const probes = createProbeStreams(PROBE_PROTOCOL)
    await assert.rejects(probes.ping(connection, AbortSignal.timeout(300)), (err: Error) => err.name === 'TimeoutError')
    await waitFor(() => received === 1, { what: 'the first probe to arrive' })
    // the stopped node wakes and answers the probe that timed out: it settles that probe, not the next
    held!.send(new Uint8Array([0x70]))
    const second = probes.ping(connection, AbortSignal.timeout(1000))
    await assert.rejects(second, (err: Error) => err.name === 'TimeoutError')
    assert.equal(received, 2)
  })

  it('a remote node that does not serve the protocol (an older stem) is not probed again: no stream per probe', async () => {
    const probes = createProbeStreams(PROBE_PROTOCOL)
    await assert.rejects(probes.ping(connection, AbortSignal.timeout(5000)), (err: Error) => err.name === 'UnsupportedProtocolError')
    assert.equal(probes.probes(connection), false)
    await probes.ping(connection, AbortSignal.timeout(5000))
    assert.equal(connection.streams.length, 0)
  })

  it('a closed probe stream fails the probes waiting on it and is opened again by the next', async () => {
    let served = 0
    await b.handle(PROBE_PROTOCOL, stream => { served++; if (served === 1) stream.abort(new Error('gone')); else echoProbes(stream) })
    const probes = createProbeStreams(PROBE_PROTOCOL)
    await assert.rejects(probes.ping(connection, AbortSignal.timeout(5000)))
    await waitFor(() => probeStreamsOn(connection).length === 0, { what: 'the first probe stream to close' })
    await probes.ping(connection, AbortSignal.timeout(5000))
    assert.equal(served, 2)
  })

  it('the echo side closes a stream that sends more than a probe burst (no amplification)', async () => {
    await b.handle(PROBE_PROTOCOL, stream => { echoProbes(stream) })
    const stream = await a.dialProtocol(b.peerId, PROBE_PROTOCOL)
    let echoed = 0
    stream.addEventListener('message', evt => { echoed += evt.data.byteLength })
    const closed = new Promise(resolve => stream.addEventListener('close', resolve, { once: true }))
    stream.send(new Uint8Array(65))
    await closed
    assert.equal(echoed, 0)
  })
})
