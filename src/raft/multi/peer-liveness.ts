// Which peers of a raft host are alive, judged by frames: every frame received from a peer
// shows it is up, and a host sends each peer a beacon (an empty batch) when it has sent it
// nothing for `intervalMs`, so a peer silent for `timeoutMs` is presumed down. Quiet
// (quiesced) groups rely on this to notice a dead leader, since they exchange no heartbeats.
//
// An outside failure detector may cover some peers (PeerWatch): it judges them itself and
// reports its verdicts (down, up), so such a peer is beaconed only every
// `covered.intervalMs` and presumed down by silence only after `covered.timeoutMs` (a
// safety net). Signed beacons every interval were about half of an idle node's CPU.
import type { NodeId } from '../types.js'

interface PeerState {
  lastSent: number
  lastHeard: number
  alive: boolean
  /** the outside detector covered the peer when last looked at (refresh) */
  covered: boolean
}

export interface CoveredLiveness {
  intervalMs: number
  timeoutMs: number
  /** the outside detector watches `peer` now */
  covers: (peer: NodeId) => boolean
}

export class PeerLiveness {
  private readonly peers = new Map<NodeId, PeerState>()

  constructor (private readonly intervalMs: number, private readonly timeoutMs: number, private readonly covered?: CoveredLiveness) {}

  /** Tracks exactly these peers; a newly tracked peer counts as alive until it stays silent. */
  track (peers: Set<NodeId>, now: number): void {
    for (const p of this.peers.keys()) if (!peers.has(p)) this.peers.delete(p)
    for (const p of peers) {
      if (!this.peers.has(p)) this.peers.set(p, { lastSent: 0, lastHeard: now, alive: true, covered: false })
    }
  }

  /**
   * Asks the outside detector which peers it covers now. A peer it stopped covering gets a
   * fresh silence window and a beacon at once: its own frames came slowly until now, and
   * it may still beacon us slowly until it notices the change too.
   */
  refresh (now: number): void {
    if (this.covered === undefined) return
    for (const [peer, p] of this.peers) {
      const covered = this.covered.covers(peer)
      if (p.covered && !covered) {
        p.lastHeard = Math.max(p.lastHeard, now)
        p.lastSent = 0
      }
      p.covered = covered
    }
  }

  /** Notes a frame from `peer`, or the outside detector's word that it is up; true when it had been judged down (it is back). */
  heard (peer: NodeId, now: number): boolean {
    const p = this.peers.get(peer)
    if (p === undefined) return false
    p.lastHeard = now
    const back = !p.alive
    p.alive = true
    return back
  }

  /** The outside detector judged `peer` down; true when it had counted as alive. */
  down (peer: NodeId): boolean {
    const p = this.peers.get(peer)
    if (p === undefined || !p.alive) return false
    p.alive = false
    return true
  }

  sent (peer: NodeId, now: number): void {
    const p = this.peers.get(peer)
    if (p !== undefined) p.lastSent = now
  }

  /** when the last frame from `peer` arrived (or the detector said it is up); undefined for a peer not tracked */
  lastHeard (peer: NodeId): number | undefined {
    return this.peers.get(peer)?.lastHeard
  }

  isAlive (peer: NodeId): boolean {
    return this.peers.get(peer)?.alive === true
  }

  /** Peers this host has sent nothing to for a beacon interval. */
  dueForBeacon (now: number): NodeId[] {
    const due: NodeId[] = []
    for (const [peer, p] of this.peers) if (now - p.lastSent >= this.interval(p)) due.push(peer)
    return due
  }

  /**
   * When dueForBeacon or newlySilent next has something to report, if nothing is sent or
   * heard before then (Infinity: no peer tracked). A host whose groups are all quiet sleeps
   * until then.
   */
  nextDue (): number {
    let due = Infinity
    for (const p of this.peers.values()) {
      due = Math.min(due, p.lastSent + this.interval(p))
      if (p.alive) due = Math.min(due, p.lastHeard + this.timeout(p) + 1)
    }
    return due
  }

  /** Peers that just crossed the silence limit (each reported once until heard again). */
  newlySilent (now: number): NodeId[] {
    const silent: NodeId[] = []
    for (const [peer, p] of this.peers) {
      if (p.alive && now - p.lastHeard > this.timeout(p)) {
        p.alive = false
        silent.push(peer)
      }
    }
    return silent
  }

  private interval (p: PeerState): number {
    return p.covered && this.covered !== undefined ? this.covered.intervalMs : this.intervalMs
  }

  private timeout (p: PeerState): number {
    return p.covered && this.covered !== undefined ? this.covered.timeoutMs : this.timeoutMs
  }
}
