// The cell channel's flow control over a stream that asks for drains (a stream pair with
// a tiny capacity, so a write is refused deterministically, without timing).
import assert from 'node:assert/strict'
import { streamPair } from '@libp2p/utils'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createFrameSigner, createFrameVerifier } from '../../src/wire/frame.js'
import { CellChannel } from '../../src/messaging/channel.js'
import { waitFor } from '../support/wait.js'

describe('messaging/channel: flow control', () => {
  it('tells waiting writers once a drain empties a congested queue (the drain that empties it is the only event left)', async () => {
    const key = await createEd25519Key()
    const signer = createFrameSigner(key)
    const [outbound, inbound] = await streamPair({ capacity: 1 })
    let writable = 0
    const channel = new CellChannel({
      stream: outbound,
      peer: 'remote',
      signer,
      verifier: createFrameVerifier(),
      maxFrameBytes: 1 << 20,
      flushBytes: 100,
      maxQueuedBytes: 1000,
      maxReadBufferBytes: 1 << 20,
      onEnvelope: () => {},
      onReject: () => {},
      onClose: () => {},
      onWritable: () => { writable++ }
    })
    inbound.addEventListener('message', () => {})
    // each send is over flushBytes, so it is written at once; the stream refuses a write
    // past its capacity, so the channel waits for a drain with an empty queue
    for (let i = 0; i < 4 && !channel.congested; i++) channel.send(new Uint8Array(300))
    assert.ok(channel.congested, 'the stream never asked for a drain')
    assert.equal(channel.queuedBytes, 0)
    await waitFor(() => !channel.congested ? true : undefined, { timeout: 10_000, what: 'the drain' })
    await waitFor(() => writable > 0 ? true : undefined, { timeout: 10_000, what: 'writers told the queue has room' })
    channel.close()
  })
})
