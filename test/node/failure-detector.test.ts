// The failure detector's disconnect verdicts around this node's own freeze. The libp2p node
// is a stand-in that only counts pings (no connections, a scripted ping): what is tested
// is the verdict logic, and a real freeze of this process's event loop.
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { createFailureDetector, type FailureDetector } from '../../src/node/failure-detector.js'
import type { MeshLibp2p } from '../../src/mesh/libp2p.js'
import { waitFor } from '../support/wait.js'

/** a libp2p node with no open connection whose ping fails `failures` times, then answers (Infinity: never) */
function pingOnly (failures: number): { libp2p: MeshLibp2p, events: EventTarget, pings: () => number } {
  const events = new EventTarget()
  let pings = 0
  const libp2p = {
    getConnections: () => [],
    services: {
      ping: {
        ping: async (): Promise<number> => {
          pings++
          if (pings <= failures) throw new Error('The operation was aborted due to timeout')
          return 1
        }
      }
    },
    addEventListener: events.addEventListener.bind(events),
    removeEventListener: events.removeEventListener.bind(events),
    handle: async () => {},
    unhandle: async () => {}
  }
  return { libp2p: libp2p as unknown as MeshLibp2p, events, pings: () => pings }
}

/** blocks this process's event loop for `ms`, as SIGSTOP or a suspended VM would */
function freeze (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

describe('node: failure detector', () => {
  let peer: PeerId
  let detector: FailureDetector | undefined
  before(async () => { peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')) })
  afterEach(() => { detector?.stop(); detector = undefined })

  /** probe rounds run so far (each asks for the members) */
  let rounds = 0
  const start = (libp2p: MeshLibp2p, down: string[]): FailureDetector => {
    rounds = 0
    return createFailureDetector(libp2p, { mesh: 'test', members: () => { rounds++; return [peer.toString()] }, onDown: id => { down.push(id) }, suspicionMs: 10, probeIntervalMs: 50, stallMs: 1000 })
  }
  const disconnect = (events: EventTarget): void => { events.dispatchEvent(new CustomEvent('peer:disconnect', { detail: peer })) }

  it('judges a disconnected peer down on its first failed ping', async () => {
    const { libp2p, events, pings } = pingOnly(Infinity)
    const down: string[] = []
    detector = start(libp2p, down)
    disconnect(events)
    await waitFor(() => down.length > 0, { what: 'the verdict' })
    assert.deepEqual(down, [peer.toString()])
    assert.equal(pings(), 1)
  })

  it('after this node woke from a freeze, retries a failed ping instead of judging: every node is redialling (CI: a 2 s machine stall made all five nodes judge each other down)', async () => {
    const { libp2p, events, pings } = pingOnly(2)
    const down: string[] = []
    detector = start(libp2p, down)
    // a probe round runs, then this process freezes past stallMs/2
    await waitFor(() => rounds > 0)
    freeze(700)
    disconnect(events)
    await waitFor(() => pings() >= 3, { what: 'the third ping' })
    assert.deepEqual(down, [], 'no verdict while the pings fail in the grace after a freeze')
  })

  it('still judges a peer that stays silent once the grace after a freeze ends', async () => {
    const { libp2p, events, pings } = pingOnly(Infinity)
    const down: string[] = []
    detector = start(libp2p, down)
    await waitFor(() => rounds > 0)
    freeze(700)
    disconnect(events)
    await waitFor(() => down.length > 0, { what: 'the verdict after the grace' })
    assert.deepEqual(down, [peer.toString()])
    assert.ok(pings() > 1, `pinged ${pings()} time(s) in the grace`)
  })
})
