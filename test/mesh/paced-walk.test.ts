// The relay transport's random walk, paced: the inner walk (DHT queries) is pulled only as
// fast as the gaps allow, the gaps double up to their ceiling, and an abort ends the walk
// mid-gap.
import assert from 'node:assert/strict'
import type { AbortOptions, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { pacedWalk, withPacedWalk, type RandomWalk } from '../../src/mesh/paced-walk.js'

const PEER: PeerInfo = { id: peerIdFromString('12D3KooWEd2uWF5242u42TpqghHwHYijAGFSxFECRyfnkyfw8EEg'), multiaddrs: [] }

/** an endless walk that counts the peers pulled from it (each one a DHT query in libp2p's) */
function countingWalk (): RandomWalk & { pulled: number } {
  const walk = {
    pulled: 0,
    async * walk (options?: AbortOptions) {
      while (options?.signal?.aborted !== true) {
        walk.pulled++
        yield PEER
      }
    }
  }
  return walk
}

/** a wait the test releases by hand, recording each gap asked for */
function manualWait (): { gaps: number[], release: () => void, wait: (ms: number, signal?: AbortSignal) => Promise<void> } {
  const gaps: number[] = []
  let pending: { resolve: () => void } | undefined
  return {
    gaps,
    release: () => { pending?.resolve() },
    wait: async (ms, signal) => {
      gaps.push(ms)
      await new Promise<void>((resolve, reject) => {
        pending = { resolve }
        signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })
    }
  }
}

/** lets pending promise callbacks and generators run */
async function turn (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}

describe('paced random walk (the relay search)', () => {
  it('pulls the next peer only after a gap that doubles up to its ceiling', async () => {
    const inner = countingWalk()
    const clock = manualWait()
    const walk = pacedWalk(() => inner, { firstGapMs: 1000, maxGapMs: 5000, wait: clock.wait })
    const controller = new AbortController()
    const peers = walk.walk({ signal: controller.signal })
    for (let i = 1; i <= 5; i++) {
      const next = peers.next()
      if (i > 1) {
        // the consumer asked for the next peer: nothing more is pulled until the gap ends
        while (clock.gaps.length < i - 1) await turn()
        assert.equal(inner.pulled, i - 1, `peer ${i} pulled before its gap ended`)
        clock.release()
      }
      assert.equal((await next).value, PEER)
      assert.equal(inner.pulled, i)
    }
    const waiting = peers.next()
    while (clock.gaps.length < 5) await turn()
    assert.deepEqual(clock.gaps, [1000, 2000, 4000, 5000, 5000])
    controller.abort()
    await assert.rejects(waiting, { name: 'AbortError' })
    assert.equal(inner.pulled, 5)
  })

  it('the components a service gets keep everything but the walk', () => {
    const inner = countingWalk()
    const components = { randomWalk: inner, other: 7 }
    const wrapped = withPacedWalk(components)
    assert.equal(wrapped.other, 7)
    assert.notEqual(wrapped.randomWalk, inner)
    assert.equal(typeof wrapped.randomWalk.walk, 'function')
  })
})
