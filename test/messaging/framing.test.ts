// framing.ts: readOne's answer may be left unawaited (the caller's write threw first); its
// rejection must not be an unhandled one, which would end the node's process.
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { readOne } from '../../src/messaging/framing.js'

describe('messaging: framing', () => {
  it('a readOne nobody awaits rejects without an unhandled rejection (timed out, or the stream closed)', async () => {
    const unhandled: unknown[] = []
    const listeners = process.listeners('unhandledRejection')
    process.removeAllListeners('unhandledRejection')
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const timedOut = new EventTarget() as unknown as Stream
      readOne(timedOut, 1024, AbortSignal.timeout(10))
      const closed = new EventTarget()
      readOne(closed as unknown as Stream, 1024, AbortSignal.timeout(60_000))
      closed.dispatchEvent(new Event('close'))
      await new Promise(resolve => setTimeout(resolve, 100))
      assert.deepEqual(unhandled, [])
      // an awaited one still rejects
      await assert.rejects(readOne(new EventTarget() as unknown as Stream, 1024, AbortSignal.timeout(10)), /timed out/)
    } finally {
      process.off('unhandledRejection', onUnhandled)
      for (const l of listeners) process.on('unhandledRejection', l)
    }
  })
})
