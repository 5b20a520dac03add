// Finding the mesh. A node dials its bootstrap addresses (retrying with backoff until it
// has a connection), then learns every other member through the private DHT: its own
// self-queries and our random walks (closest-peers queries for random keys) return peers
// that land in the peer store; each newly discovered peer is dialled. Once the mesh is
// quiet the walks grow rarer (walk-schedule.ts). Friend meshes are
// small, so every node keeps a direct connection to every other (up to `maxPeers`).
// To avoid both ends dialling each other at once (two connections, two handshakes), of
// two peers the one with the smaller id dials first; the other dials only if it is still
// not connected a few seconds later (the first may be unable to reach it).
// The peer store is persistent: after a restart the known peers are dialled again, no
// invite needed.
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { randomBytes } from 'node:crypto'
import { createLogger } from '../util/logger.js'
import type { MeshLibp2p } from './libp2p.js'
import { WalkSchedule } from './walk-schedule.js'

export interface DiscoveryComponents {
  libp2p: MeshLibp2p
}

export interface DiscoveryInit {
  bootstrap: Multiaddr[]
  /** dial discovered peers while fewer than this many are connected (default 64) */
  maxPeers?: number
  /** tick while the mesh is changing, ms (default 500); every few ticks a random walk and a peer store scan */
  fastInterval?: number
  /** tick once the mesh is quiet, ms (default 5000) */
  slowInterval?: number
}

export interface Discovery {
  start: () => void
  stop: () => void
}

const QUIET_AFTER_MS = 10_000
const MAX_BACKOFF_MS = 30_000
const SCAN_EVERY_TICKS = 4
const WALK_EVERY_TICKS = 2
/** while the mesh is quiet, the gap between walks grows to this many (slow) ticks: 16 × 5 s */
const QUIET_WALK_EVERY_TICKS = 16
const MAX_PARALLEL_DIALS = 8
const DIAL_TIMEOUT_MS = 10_000
const WALK_TIMEOUT_MS = 5_000
/** how long the larger id waits for the smaller one to dial */
const YIELD_MS = 2_000

/**
 * Errors of a dial that reached the peer but failed in its handshake: with a private
 * network (pnet) key that differs from the peer's, the encrypted handshake is garbage to
 * the other end, which resets the connection; a peer id other than the address names
 * means the address now belongs to another node. Both usually mean a wrong or stale invite.
 */
const REFUSED_BY_PEER = new Set(['EncryptionFailedError', 'InvalidCryptoExchangeError', 'UnexpectedPeerError', 'InvalidMessageError', 'MuxerUnavailableError'])

/**
 * The handshake failures in a dial's error: libp2p dials every address it knows of a peer
 * (an invite lists several) and then throws one AggregateError ("All multiaddr dials
 * failed") holding each address's error. A failure naming this node's own id (`self`) is a
 * dial that reached this node itself (an invite's loopback address, seen from another host),
 * not the peer refusing.
 */
function refusals (err: unknown, self?: string): Error[] {
  if (!(err instanceof Error)) return []
  if (REFUSED_BY_PEER.has(err.name)) return self !== undefined && err.message.includes(self) ? [] : [err]
  const inner = (err as { errors?: unknown }).errors
  return Array.isArray(inner) ? inner.flatMap(e => refusals(e, self)) : []
}

/** Why dialling bootstrap `addr` failed, for the log: the peer refused us, or it could not be reached. */
export function dialFailure (addr: string, err: Error, self?: string): string {
  const refused = refusals(err, self)
  if (refused.length > 0) return `bootstrap ${addr}: peer refused the connection: usually a wrong or stale invite (another mesh key, or the address now belongs to another node; ${refused.map(e => `${e.name}: ${e.message}`).join('; ')})`
  return `bootstrap ${addr} unreachable (${err.message})`
}

export function createDiscovery ({ libp2p }: DiscoveryComponents, init: DiscoveryInit): Discovery {
  const log = createLogger('discovery')
  const maxPeers = init.maxPeers ?? 64
  const fastInterval = init.fastInterval ?? 500
  const slowInterval = init.slowInterval ?? 5000
  const self = libp2p.peerId.toString()
  const backoff = new Map<string, { failures: number, nextAttempt: number }>()
  const dialing = new Set<string>()
  /** when each peer was first seen, for the smaller-id-dials-first rule */
  const firstSeen = new Map<string, number>()
  let controller = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  let lastChange = 0
  let walking = false
  let ticks = 0
  const walks = new WalkSchedule(WALK_EVERY_TICKS, QUIET_WALK_EVERY_TICKS)
  let running = false

  const connected = (id: string): boolean => libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open')

  const dialPeer = (peer: PeerId): void => {
    const id = peer.toString()
    if (!running || id === self || dialing.has(id) || dialing.size >= MAX_PARALLEL_DIALS || connected(id)) return
    if (libp2p.getPeers().length >= maxPeers) return
    const state = backoff.get(id)
    if (state != null && Date.now() < state.nextAttempt) return
    if (id < self) {
      const seen = firstSeen.get(id) ?? Date.now()
      firstSeen.set(id, seen)
      if (Date.now() - seen < YIELD_MS) return
    }
    dialing.add(id)
    libp2p.dial(peer, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) })
      .then(() => { backoff.delete(id); log.debug(`connected to ${id}`) })
      .catch((err: Error) => {
        const failures = (state?.failures ?? 0) + 1
        backoff.set(id, { failures, nextAttempt: Date.now() + Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures) })
        log.debug(`dial ${id} failed (${failures}x): ${err.message}`)
      })
      .finally(() => { dialing.delete(id) })
  }

  // a lost connection (a peer stalled, restarted or cut off) makes walks frequent again:
  // they redial the peers they meet, which reconnects a node that wakes or a healed partition
  const onDisconnect = (): void => { walks.changed(ticks) }

  const onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    lastChange = Date.now()
    walks.changed(ticks)
    log.debug(`discovered ${evt.detail.id.toString()}`)
    dialPeer(evt.detail.id)
  }

  /** random walk: a closest-peers query for a random key visits peers all over the table */
  const walk = async (): Promise<void> => {
    if (walking || libp2p.getConnections().length === 0) return
    walking = true
    try {
      const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(WALK_TIMEOUT_MS)])
      for await (const _event of libp2p.services.dht.getClosestPeers(randomBytes(32), { signal })) {
        // events are consumed only to drive the query; found peers reach the peer store
      }
    } catch (err) {
      if (running) log.debug(`random walk ended: ${(err as Error).message}`)
    } finally {
      walking = false
    }
  }

  const tick = async (): Promise<void> => {
    if (!running) return
    ticks++
    // new peers arrive as peer:discovery events; the full scan retries the ones that
    // failed or had to wait, and after a restart reconnects to the stored ones
    if (ticks % SCAN_EVERY_TICKS === 1) await scan()
    const quiet = Date.now() - lastChange > QUIET_AFTER_MS
    if (walks.due(ticks, quiet)) void walk()
    if (!running) return
    timer = setTimeout(() => { void tick() }, quiet ? slowInterval : fastInterval)
  }

  const scan = async (): Promise<void> => {
    try {
      for (const peer of await libp2p.peerStore.all({ signal: controller.signal })) {
        if (peer.addresses.length > 0) dialPeer(peer.id)
      }
    } catch (err) {
      if (running) log.debug(`peer store scan failed: ${(err as Error).message}`)
    }
  }

  /** dial each bootstrap address until the node has any connection, backing off */
  const bootstrap = async (addr: Multiaddr): Promise<void> => {
    let delayMs = 1000
    while (running) {
      if (libp2p.getConnections().length > 0 && connectedToBootstrap(addr)) return
      try {
        await libp2p.dial(addr, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]) })
        log.debug(`connected to bootstrap ${addr.toString()}`)
        return
      } catch (err) {
        if (!running) return
        if (libp2p.getConnections().length > 0) {
          log.debug(`bootstrap ${addr.toString()} unreachable, but the node is connected to the mesh`)
          return
        }
        log.warn(`${dialFailure(addr.toString(), err as Error, self)}; retrying in ${Math.round(delayMs / 1000)}s`)
        await new Promise(resolve => { const t = setTimeout(resolve, delayMs); controller.signal.addEventListener('abort', () => { clearTimeout(t); resolve(undefined) }, { once: true }) })
        delayMs = Math.min(MAX_BACKOFF_MS, delayMs * 2)
      }
    }
  }

  const connectedToBootstrap = (addr: Multiaddr): boolean => {
    const id = addr.getComponents().findLast(c => c.name === 'p2p')?.value
    return id != null && connected(id)
  }

  return {
    start () {
      if (running) return
      running = true
      controller = new AbortController()
      lastChange = Date.now()
      libp2p.addEventListener('peer:discovery', onDiscovery)
      libp2p.addEventListener('peer:disconnect', onDisconnect)
      for (const addr of init.bootstrap) void bootstrap(addr)
      void tick()
    },
    stop () {
      running = false
      controller.abort()
      clearTimeout(timer)
      libp2p.removeEventListener('peer:discovery', onDiscovery)
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
    }
  }
}
