// Which peers of a raft host are alive, judged by frames: every frame received from a peer
// shows it is up, and a host sends each peer a beacon (an empty batch) when it has sent it
// nothing for `intervalMs`, so a peer silent for `timeoutMs` is presumed down. Quiet
// (quiesced) groups rely on this to notice a dead leader, since they exchange no heartbeats.
import type { NodeId } from '../types.js'

interface PeerState {
  lastSent: number
  lastHeard: number
  alive: boolean
}

export class PeerLiveness {
  private readonly peers = new Map<NodeId, PeerState>()

  constructor (private readonly intervalMs: number, private readonly timeoutMs: number) {}

  /** Tracks exactly these peers; a newly tracked peer counts as alive until it stays silent. */
  track (peers: Set<NodeId>, now: number): void {
    for (const p of this.peers.keys()) if (!peers.has(p)) this.peers.delete(p)
    for (const p of peers) {
      if (!this.peers.has(p)) this.peers.set(p, { lastSent: 0, lastHeard: now, alive: true })
    }
  }

  /** Notes a frame from `peer`; true when it had been judged silent (it is back). */
  heard (peer: NodeId, now: number): boolean {
    const p = this.peers.get(peer)
    if (p === undefined) return false
    p.lastHeard = now
    const back = !p.alive
    p.alive = true
    return back
  }

  sent (peer: NodeId, now: number): void {
    const p = this.peers.get(peer)
    if (p !== undefined) p.lastSent = now
  }

  isAlive (peer: NodeId): boolean {
    return this.peers.get(peer)?.alive === true
  }

  /** Peers this host has sent nothing to for a beacon interval. */
  dueForBeacon (now: number): NodeId[] {
    const due: NodeId[] = []
    for (const [peer, p] of this.peers) if (now - p.lastSent >= this.intervalMs) due.push(peer)
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
      due = Math.min(due, p.lastSent + this.intervalMs)
      if (p.alive) due = Math.min(due, p.lastHeard + this.timeoutMs + 1)
    }
    return due
  }

  /** Peers that just crossed the silence limit (each reported once until heard again). */
  newlySilent (now: number): NodeId[] {
    const silent: NodeId[] = []
    for (const [peer, p] of this.peers) {
      if (p.alive && now - p.lastHeard > this.timeoutMs) {
        p.alive = false
        silent.push(peer)
      }
    }
    return silent
  }
}
