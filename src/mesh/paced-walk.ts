// A random walk that yields its peers at a slowing pace, for the circuit relay transport's
// search for relays. libp2p's walk runs DHT queries back to back for as long as a walker
// waits, and the relay search walks until it holds a reservation: a home whose only relay
// died (its other members behind NAT refuse it a slot) queried its WebRTC peer 10–20 times
// a second without end, one data channel per query. Under that churn the WebRTC connection
// between two homes went silent in both directions and their asks timed out (netns, 2 of 15
// runs of nat-webrtc). The walk waits for its consumer between peers, so pacing the
// consumer paces the queries: the first peers come fast (a newcomer still finds a relay at
// once), then one every `maxGapMs`.
import { setTimeout as delay } from 'node:timers/promises'
import type { AbortOptions, PeerInfo } from '@libp2p/interface'

/** what the relay transport uses of libp2p's random walk (@libp2p/interface-internal RandomWalk) */
export interface RandomWalk {
  walk: (options?: AbortOptions) => AsyncGenerator<PeerInfo>
}

export interface WalkPace {
  /** ms after the first peer of a walk (default 1000); each further gap doubles */
  firstGapMs?: number
  /** the longest gap, ms (default 60 000) */
  maxGapMs?: number
  /** waits `ms` or rejects on abort (default: a timer) */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>
}

/** `inner()`'s walk, a gap after each peer that doubles from `firstGapMs` to `maxGapMs` */
export function pacedWalk (inner: () => RandomWalk, pace: WalkPace = {}): RandomWalk {
  const first = pace.firstGapMs ?? 1000
  const max = pace.maxGapMs ?? 60_000
  const wait = pace.wait ?? (async (ms: number, signal?: AbortSignal) => { await delay(ms, undefined, { signal }) })
  return {
    async * walk (options?: AbortOptions) {
      let gap = first
      for await (const peer of inner().walk(options)) {
        yield peer
        // an abort ends the walk like the inner one would (AbortError)
        await wait(gap, options?.signal)
        gap = Math.min(max, gap * 2)
      }
    }
  }
}

/** the components of a libp2p service, with `randomWalk` replaced by a paced one */
export function withPacedWalk<C extends { randomWalk: RandomWalk }> (components: C, pace?: WalkPace): C {
  const paced = pacedWalk(() => components.randomWalk, pace)
  return new Proxy(components, { get: (target, key, receiver) => key === 'randomWalk' ? paced : Reflect.get(target, key, receiver) })
}
