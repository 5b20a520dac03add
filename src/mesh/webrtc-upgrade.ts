// Background upgrade of relayed connections to WebRTC. When this node reaches a member
// only through a circuit relay hop, it dials <relay>/p2p-circuit/webrtc/p2p/<member>: the
// SDP offer and answer travel over the relayed connection, then ICE punches a UDP path
// through both NATs (STUN from ice-servers.ts). A WebRTC connection counts as direct, so
// libp2p opens new streams on it; streams already open stay on the relay until it closes.
// A failed punch hangs until its timeout, so attempts run in the background with a
// per-peer backoff while traffic keeps flowing on the relay; no caller waits for them.
// Of two peers, the smaller id tries first; the other joins in after a while (the first
// may lack a STUN server, or its attempts fail for its own reasons).
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { createLogger } from '../util/logger.js'
import { isIndirectPath, isRelayedAddr, peerPath, type PeerPath } from './peer-path.js'
import { relayOf } from './membership-gater.js'

export type UpgradeResult = 'tried' | 'succeeded' | 'failed'
/** why an attempt failed: the punch timed out, the gater refused, or another error */
export type UpgradeFailure = 'timeout' | 'denied' | 'error'

export interface WebRTCUpgradeComponents {
  libp2p: {
    peerId: { toString: () => string }
    getConnections: () => Connection[]
    dial: (addr: Multiaddr, options: { signal: AbortSignal }) => Promise<Connection>
  }
  isMember: (peer: string) => boolean
  /** members and their advertised addresses: one not connected at all is first reached through its relay */
  members?: () => Array<{ id: string, addrs: string[] }>
  onUpgrade?: (result: UpgradeResult, reason?: UpgradeFailure) => void
}

export interface WebRTCUpgradeInit {
  /** how often relayed peers are looked for, ms (default 2000) */
  interval?: number
  /** one attempt's deadline, ms (default 30000) */
  attemptTimeout?: number
  /** first retry delay, doubling up to maxBackoff, ms (default 5000) */
  backoff?: number
  maxBackoff?: number
  /** how long the larger id leaves the first attempts to the smaller, ms (default 15000) */
  yieldMs?: number
}

export interface WebRTCUpgrade {
  /** whether `addr` is a WebRTC address this upgrade is dialling now (for the gater) */
  dialling: (addr: Multiaddr) => boolean
  start: () => void
  stop: () => void
}

/** the WebRTC address that signals through the relay of relayed address `addr` */
export function webrtcAddrVia (addr: Multiaddr, peer: string): Multiaddr | undefined {
  const text = addr.toString()
  const at = text.indexOf('/p2p-circuit')
  if (at < 0) return undefined
  return multiaddr(`${text.slice(0, at)}/p2p-circuit/webrtc/p2p/${peer}`)
}

/**
 * The advertised relayed address of member `id` to dial it at, if one is usable: its relay
 * is not this node itself (a member that reserved a slot here advertises one; dialling it
 * fails with "Can not dial self", and a failure detector's ping of the member made while
 * it ran failed with that error: a node woken from a stall judged a live member down) and
 * not a relay
 * this node reaches only indirectly (the gater refuses those, membership-gater.ts).
 */
export function relayedDialAddr (addrs: string[], id: string, self: string, pathTo: (peer: string) => PeerPath | undefined): Multiaddr | undefined {
  for (const text of addrs) {
    if (!text.endsWith('/p2p-circuit')) continue
    let addr: Multiaddr
    try {
      addr = multiaddr(`${text}/p2p/${id}`)
    } catch {
      continue
    }
    const relay = relayOf(addr)
    if (relay === undefined || relay === self || isIndirectPath(pathTo(relay))) continue
    return addr
  }
  return undefined
}

export function failureReason (err: Error): UpgradeFailure {
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timeout'
  if (err.name === 'ConnectionInterceptedError') return 'denied'
  return 'error'
}

export function createWebRTCUpgrade (components: WebRTCUpgradeComponents, init: WebRTCUpgradeInit = {}): WebRTCUpgrade {
  const log = createLogger('webrtc')
  const { libp2p, isMember } = components
  const interval = init.interval ?? 2000
  const attemptTimeout = init.attemptTimeout ?? 30_000
  const firstBackoff = init.backoff ?? 5000
  const maxBackoff = init.maxBackoff ?? 300_000
  const yieldMs = init.yieldMs ?? 15_000
  const self = libp2p.peerId.toString()
  const retry = new Map<string, { failures: number, next: number }>()
  /** when each peer was first seen reachable only through a relay */
  const relayedSince = new Map<string, number>()
  const trying = new Set<string>()
  const addrs = new Set<string>()
  let controller = new AbortController()
  let timer: ReturnType<typeof setInterval> | undefined

  const attempt = (peer: string, relayed: Connection): void => {
    const addr = webrtcAddrVia(relayed.remoteAddr, peer)
    if (addr === undefined) return
    trying.add(peer)
    addrs.add(addr.toString())
    components.onUpgrade?.('tried')
    log.debug(`trying a WebRTC connection to ${peer} via ${addr.toString()}`)
    libp2p.dial(addr, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(attemptTimeout)]) })
      .then(conn => {
        retry.delete(peer)
        relayedSince.delete(peer)
        components.onUpgrade?.('succeeded')
        log.info(`WebRTC connection to ${peer} (was relayed), ${conn.remoteAddr.toString()}`)
      }, (err: Error) => {
        if (controller.signal.aborted) return
        const failures = (retry.get(peer)?.failures ?? 0) + 1
        // jitter keeps two peers' retries from lining up
        const delay = Math.min(maxBackoff, firstBackoff * 2 ** (failures - 1)) * (0.75 + Math.random() / 2)
        retry.set(peer, { failures, next: Date.now() + delay })
        const reason = failureReason(err)
        components.onUpgrade?.('failed', reason)
        log.debug(`WebRTC to ${peer} failed (${failures}x, ${reason}): ${err.message}; staying on the relay, retry in ${Math.round(delay / 1000)}s`)
      })
      .finally(() => { trying.delete(peer); addrs.delete(addr.toString()) })
  }

  /**
   * A member with no connection is dialled at its advertised relayed address: an ordinary
   * dial tries its private addresses first, and on a home LAN those can hang until the
   * dial times out before the relay is ever tried.
   */
  const viaRelay = (id: string, addrs: string[]): void => {
    const pathTo = (peer: string): PeerPath | undefined => peerPath(libp2p.getConnections().filter(c => c.remotePeer.toString() === peer))
    const addr = relayedDialAddr(addrs, id, self, pathTo)
    if (addr === undefined) return
    trying.add(id)
    libp2p.dial(addr, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(attemptTimeout)]) })
      .then(() => { log.debug(`connected to ${id} through its relay`) }, (err: Error) => {
        const failures = (retry.get(id)?.failures ?? 0) + 1
        retry.set(id, { failures, next: Date.now() + Math.min(maxBackoff, firstBackoff * 2 ** (failures - 1)) })
        log.debug(`relayed dial of ${id} failed: ${err.message}`)
      })
      .finally(() => { trying.delete(id) })
  }

  const tick = (): void => {
    const byPeer = new Map<string, Connection[]>()
    for (const c of libp2p.getConnections()) {
      const id = c.remotePeer.toString()
      byPeer.set(id, [...(byPeer.get(id) ?? []), c])
    }
    const now = Date.now()
    for (const id of relayedSince.keys()) if (peerPath(byPeer.get(id) ?? []) !== 'relayed') relayedSince.delete(id)
    for (const [id, conns] of byPeer) {
      if (peerPath(conns) !== 'relayed' || trying.has(id) || !isMember(id)) continue
      const since = relayedSince.get(id) ?? now
      relayedSince.set(id, since)
      if (id < self && now - since < yieldMs) continue
      if ((retry.get(id)?.next ?? 0) > now) continue
      const relayed = conns.find(c => c.status === 'open' && isRelayedAddr(c.remoteAddr))
      if (relayed !== undefined) attempt(id, relayed)
    }
    for (const m of components.members?.() ?? []) {
      if (m.id === self || byPeer.has(m.id) || trying.has(m.id) || m.id < self || (retry.get(m.id)?.next ?? 0) > now) continue
      viaRelay(m.id, m.addrs)
    }
  }

  return {
    dialling: addr => addrs.has(addr.toString()),
    start () {
      if (timer !== undefined) return
      controller = new AbortController()
      timer = setInterval(tick, interval)
    },
    stop () {
      clearInterval(timer)
      timer = undefined
      controller.abort()
      trying.clear()
    }
  }
}
