// Fast failure detection for the leaders' placement: a closed connection makes a peer
// suspect; the verdict is a failed ping (a fresh dial) shortly after. A node killed with
// -9 has its TCP connections reset at once and refuses the dial, so it is judged down
// within a fraction of a second, long before its capacity adverts expire. A peer is up
// again as soon as a connection to it opens.
import type { PeerId } from '@libp2p/interface'
import type { MeshLibp2p } from '../mesh/libp2p.js'
import { createLogger } from '../util/logger.js'

export interface FailureDetectorInit {
  /** ms between the disconnect and the ping (default 100: lets a redial in progress land) */
  suspicionMs?: number
  /** ms the ping may take (default 1000) */
  pingTimeoutMs?: number
  onDown: (peer: string) => void
}

export interface FailureDetector {
  isDown: (peer: string) => boolean
  stop: () => void
}

export function createFailureDetector (libp2p: MeshLibp2p, init: FailureDetectorInit): FailureDetector {
  const log = createLogger('node')
  const down = new Set<string>()
  const timers = new Set<NodeJS.Timeout>()
  let stopped = false
  const judge = async (peer: PeerId): Promise<void> => {
    const id = peer.toString()
    if (stopped || libp2p.getConnections(peer).some(c => c.status === 'open')) return
    try {
      await libp2p.services.ping.ping(peer, { signal: AbortSignal.timeout(init.pingTimeoutMs ?? 1000) })
    } catch (err) {
      if (stopped || down.has(id)) return
      down.add(id)
      log.info(`peer ${id} is down (disconnected, ping failed: ${(err as Error).message})`)
      init.onDown(id)
    }
  }
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const timer = setTimeout(() => { timers.delete(timer); void judge(evt.detail) }, init.suspicionMs ?? 100)
    timers.add(timer)
  }
  const onConnect = (evt: CustomEvent<PeerId>): void => { down.delete(evt.detail.toString()) }
  libp2p.addEventListener('peer:disconnect', onDisconnect)
  libp2p.addEventListener('peer:connect', onConnect)
  return {
    isDown: peer => down.has(peer),
    stop () {
      stopped = true
      for (const t of timers) clearTimeout(t)
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
      libp2p.removeEventListener('peer:connect', onConnect)
    }
  }
}
