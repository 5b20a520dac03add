// Raw libp2p: `b` echoes each length-prefixed frame; `a` sends one and waits for it back.
// The baseline of remote asks (bench/messaging.ts) and the runtime comparison (bench/runtime.ts).
import type { Libp2p } from '@libp2p/interface'
import { readFrames, encodeFrame } from '../../src/messaging/framing.js'

const ECHO = '/bench/echo/1'

/**
 * One round trip of `size` bytes per call of the returned function. Calls may overlap:
 * echoes come back in order on the one stream, each answers the oldest call waiting.
 */
export async function rawEcho (a: Libp2p, b: Libp2p, size: number): Promise<() => Promise<void>> {
  await b.handle(ECHO, stream => {
    readFrames(stream, 1 << 20, { onFrame: f => { stream.send(encodeFrame(f)) }, onOversized: () => {}, onClose: () => {} })
  })
  const stream = await a.dialProtocol(b.peerId, ECHO)
  const waiting: Array<() => void> = []
  readFrames(stream, 1 << 20, { onFrame: () => { waiting.shift()?.() }, onOversized: () => {}, onClose: () => {} })
  const payload = new Uint8Array(size).fill(1)
  return async () => {
    const { promise, resolve } = Promise.withResolvers<void>()
    waiting.push(resolve)
    stream.send(encodeFrame(payload))
    await promise
  }
}
