// Fast failure detection for the leaders' placement: a closed connection makes a peer
// suspect; the verdict is a failed ping (a fresh dial) shortly after. A node killed with
// -9 has its TCP connections reset at once and refuses the dial, so it is judged down
// within a fraction of a second, long before its capacity adverts expire. A stalled node
// (SIGSTOP, a frozen VM) keeps its connections open, so members are also probed with a
// ping every `probeIntervalMs` (a yamux PING, or a byte on a WebRTC connection's probe
// stream: probe-streams.ts); one that leaves them unanswered (stall-watch.ts) is judged
// down and its connections are cut. A peer is up again as soon as a connection to it opens
// (a stalled one that wakes up reconnects) or it answers a ping on one that is open.
// For a few seconds after this node itself woke from a freeze, a failed ping is retried
// rather than believed (stall-watch.ts: the whole machine froze, and every node redials).
import { setTimeout as delay } from 'node:timers/promises'
import type { AbortOptions, Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { MeshLibp2p } from '../mesh/libp2p.js'
import { createLogger } from '../util/logger.js'
import { StallWatch } from './stall-watch.js'
import { createProbeStreams, echoProbes, probeProtocol } from './probe-streams.js'

/** ms between the pings of a disconnected peer while a freeze's grace lasts */
const RETRY_IN_GRACE_MS = 250

/** the ping of a stream muxer that has one (@libp2p/yamux: a PING frame answered by the remote muxer; resolves with the RTT) */
interface MuxerPing {
  ping?: (options?: AbortOptions) => Promise<number>
}

export interface FailureDetectorInit {
  /** ms between the disconnect and the ping (default 100: lets a redial in progress land) */
  suspicionMs?: number
  /** ms the ping may take (default 1000) */
  pingTimeoutMs?: number
  /** ms between stall probes of each connected member (default 500) */
  probeIntervalMs?: number
  /** ms a connected member may leave its probes unanswered before it is judged down (default 1500) */
  stallMs?: number
  /** the mesh's name (the probe stream's protocol id) */
  mesh: string
  /** the mesh members (peer ids) to watch for stalls */
  members: () => Iterable<string>
  onDown: (peer: string) => void
  /** a peer judged down answered again on an open connection (a new connection says so by itself: peer:connect) */
  onUp?: (peer: string) => void
  /** ms a connected member may leave its probes unanswered before it is suspect (default 750) */
  suspectMs?: number
  /**
   * a connected member has left its probes unanswered for `suspectMs`: not a verdict (it may
   * answer yet), but reason to get ready (once per silence; its raft groups wake, so an
   * election can follow the verdict at once)
   */
  onSuspect?: (peer: string) => void
}

export interface FailureDetector {
  isDown: (peer: string) => boolean
  /** `peer` is probed for stalls now (a member whose open connections can all be pinged) and not judged down: a verdict on it would come from here */
  covers: (peer: string) => boolean
  stop: () => void
}

export function createFailureDetector (libp2p: MeshLibp2p, init: FailureDetectorInit): FailureDetector {
  const log = createLogger('node')
  const down = new Set<string>()
  const timers = new Set<NodeJS.Timeout>()
  let stopped = false
  const verdict = (id: string, why: string): void => {
    if (stopped || down.has(id)) return
    down.add(id)
    log.info(`peer ${id} is down (${why})`)
    init.onDown(id)
  }
  const stalls = new StallWatch({ stallMs: init.stallMs })
  const isOpen = (peer: PeerId): boolean => libp2p.getConnections(peer).some(c => c.status === 'open')
  /** aborted by stop: ends the retries of a judgement in a freeze's grace */
  const stopping = new AbortController()
  const judge = async (peer: PeerId): Promise<void> => {
    const id = peer.toString()
    while (!stopped && !isOpen(peer)) {
      try {
        await libp2p.services.ping.ping(peer, { signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(init.pingTimeoutMs ?? 1000)]) })
        return
      } catch (err) {
        // a connection that opened meanwhile (it redialed us) says it is up, and no connect event would follow
        if (stopped || isOpen(peer)) return
        // this node has just woken from a freeze (stall-watch.ts): everyone is redialling, try again
        if (stalls.inGrace(Date.now())) {
          await delay(RETRY_IN_GRACE_MS, undefined, { signal: stopping.signal }).catch(() => {})
          continue
        }
        verdict(id, `disconnected, ping failed: ${(err as Error).message}`)
        return
      }
    }
  }
  /** the open connections of every peer, looked up once per probe round (a lookup per peer and question cost more than the probes) */
  const openByPeer = (): Map<string, Connection[]> => {
    const open = new Map<string, Connection[]>()
    for (const c of libp2p.getConnections()) {
      if (c.status !== 'open') continue
      const id = c.remotePeer.toString()
      const list = open.get(id)
      if (list === undefined) open.set(id, [c])
      else list.push(c)
    }
    return open
  }
  const protocol = probeProtocol(init.mesh)
  const probeStreams = createProbeStreams(protocol)
  const muxerOf = (c: Connection): MuxerPing | undefined => (c as Connection & { muxer?: MuxerPing }).muxer
  /** every open connection can be pinged (a WebRTC one whose remote node serves no probe stream cannot) */
  const pingable = (open: Connection[]): boolean => open.every(c => typeof muxerOf(c)?.ping === 'function' || probeStreams.probes(c))
  /**
   * Pings every open connection to `id` and resolves once one answers: with its stream
   * muxer's own ping (a yamux PING frame: a few bytes, no stream; libp2p's ping protocol
   * opened a stream per probe, which cost an idle node about 2% of a core), or on a
   * connection whose muxer has none (WebRTC) over its long-lived probe stream
   * (probe-streams.ts). A peer is alive if any path to it answers: a relayed connection
   * whose relay died must not condemn a direct one.
   */
  const pingOpen = async (open: Connection[], signal: AbortSignal): Promise<void> => {
    await Promise.any(open.map(async c => {
      const muxer = muxerOf(c)
      if (typeof muxer?.ping === 'function') await muxer.ping({ signal })
      else await probeStreams.ping(c, signal)
    }))
  }
  const back = (id: string): void => {
    if (stopped || !down.delete(id)) return
    log.info(`peer ${id} is up again (it answered a ping)`)
    init.onUp?.(id)
  }
  const suspectMs = init.suspectMs ?? 750
  /** watched members silent for suspectMs, reported once per silence */
  const suspected = new Set<string>()
  /** members whose connections are being checked after this node woke from a freeze */
  const checking = new Set<string>()
  /** the members the last probe round watched whose connections can all be pinged */
  let covered = new Set<string>()
  const condemn = (id: string, silentMs: number): void => {
    verdict(id, `no answer to pings for ${silentMs} ms on an open connection: stalled`)
    // cut it off: it stops getting our traffic, and when it wakes it reconnects, which says it is back
    for (const c of libp2p.getConnections(peerIdFromString(id))) c.abort(new Error(`peer ${id} stalled`))
  }
  let overdueTimer: NodeJS.Timeout | undefined
  const checkOverdue = (): void => {
    if (stopped) return
    for (const { id, silentMs } of stalls.overdue(Date.now())) condemn(id, silentMs)
  }
  const probeRound = (): void => {
    const open = openByPeer()
    const openTo = (id: string): Connection[] => open.get(id) ?? []
    const members = [...init.members()].filter(id => open.has(id))
    const watched = members.filter(id => !down.has(id) && !checking.has(id))
    covered = new Set(watched.filter(id => pingable(openTo(id))))
    // a peer judged down while a connection to it stayed or came open (our own ping lost
    // its race with a redial, or it woke from a stall) is up once it answers on it
    for (const id of members.filter(id => down.has(id))) {
      pingOpen(openTo(id), AbortSignal.timeout(stalls.stallMs)).then(() => { back(id) }, () => {})
    }
    const now = Date.now()
    for (const id of suspected) if (!watched.includes(id)) suspected.delete(id)
    for (const id of watched) {
      if (stalls.silentMs(id, now) <= suspectMs) suspected.delete(id)
      else if (!suspected.has(id)) {
        suspected.add(id)
        init.onSuspect?.(id)
      }
    }
    const { probe, stalled, cutOff } = stalls.tick(watched, now)
    if (cutOff !== undefined) {
      // this node was frozen for longer than its peers wait before judging it stalled: if
      // they did, they cut it off, and a connection whose close it has not read yet leaves
      // its pings unanswered (a woken node judged live peers down). Each connection to a
      // member is pinged, and one that does not answer is hung up on; the disconnect dials
      // afresh (judge), and a peer that answers is up as before. When the whole machine
      // froze, nobody cut anyone off and the connections stay: hanging up on all of them
      // made every node redial at once, and homes behind NAT lost their relays for longer
      // than the grace (netns false-verdicts). The stall watch leaves a member alone while
      // its connections are checked: the probe it sent this round on a connection cut
      // meanwhile would count as silence
      log.info(`this node was frozen for ${cutOff} ms: checking its connections to ${members.length} member(s)`)
      const check = AbortSignal.timeout(init.pingTimeoutMs ?? 1000)
      for (const id of members) {
        checking.add(id)
        const checks = openTo(id).map(async c => await pingOpen([c], check).catch(() => { c.abort(new Error(`this node was frozen for ${cutOff} ms and the connection to ${id} no longer answers`)) }))
        void Promise.all(checks).finally(() => { checking.delete(id) })
      }
    }
    for (const { id, silentMs } of stalled) condemn(id, silentMs)
    // one deadline for the round's probes
    const signal = AbortSignal.timeout(stalls.stallMs)
    for (const id of probe) {
      pingOpen(openTo(id), signal).then(
        () => { stalls.settled(id, true, Date.now()) },
        // an error that is not our timeout came from a live end (or a closed connection, which the disconnect path judges)
        () => { stalls.settled(id, !signal.aborted, Date.now()) }
      )
    }
    // the verdict on a peer that stays silent comes when its silence passes stallMs, not at
    // the round after (up to a probe interval later); each round sets it anew, so while
    // the peers answer it never fires (one past due already waits for its rounds)
    clearTimeout(overdueTimer)
    const due = stalls.dueAt()
    if (due !== undefined && due > now) overdueTimer = setTimeout(checkOverdue, due - now)
  }
  const probes = setInterval(probeRound, init.probeIntervalMs ?? 500)
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const timer = setTimeout(() => { timers.delete(timer); void judge(evt.detail) }, init.suspicionMs ?? 100)
    timers.add(timer)
  }
  const onConnect = (evt: CustomEvent<PeerId>): void => { down.delete(evt.detail.toString()) }
  libp2p.addEventListener('peer:disconnect', onDisconnect)
  libp2p.addEventListener('peer:connect', onConnect)
  libp2p.handle(protocol, stream => { echoProbes(stream) }, { maxInboundStreams: 2 }).catch((err: Error) => { log.warn(`cannot serve probes: ${err.message}`) })
  return {
    isDown: peer => down.has(peer),
    covers: peer => covered.has(peer) && !down.has(peer),
    stop () {
      stopped = true
      stopping.abort()
      clearInterval(probes)
      clearTimeout(overdueTimer)
      for (const t of timers) clearTimeout(t)
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
      libp2p.removeEventListener('peer:connect', onConnect)
      libp2p.unhandle(protocol).catch(() => {})
    }
  }
}
