// An in-process network of raft transports for unit tests of the host: asynchronous
// delivery (like a socket), with links that can be cut to simulate partitions and dead
// nodes. Real deployments use the libp2p transport.
import type { NodeId } from '../types.js'
import type { RaftReceiver, RaftTransport } from './types.js'

export class MemoryNetwork {
  private readonly receivers = new Map<NodeId, RaftReceiver>()
  private readonly cut = new Set<string>()
  /** payloads delivered, per `from->to` link */
  readonly delivered = new Map<string, number>()
  /** payloads sent and not yet delivered (or dropped) */
  inFlight = 0

  /** `maxPayloadBytes`: larger payloads are dropped, as a real transport's frame limit does */
  constructor (private readonly maxPayloadBytes?: number) {}

  transport (self: NodeId): RaftTransport {
    return {
      maxPayloadBytes: this.maxPayloadBytes,
      send: (to, payload) => this.send(self, to, payload),
      setReceiver: (receiver) => { this.receivers.set(self, receiver) }
    }
  }

  /** stops delivery between a and b, both ways */
  disconnect (a: NodeId, b: NodeId): void {
    this.cut.add(`${a}->${b}`)
    this.cut.add(`${b}->${a}`)
  }

  /** isolates a node from everyone (as if its process died) */
  isolate (node: NodeId): void {
    for (const other of this.receivers.keys()) if (other !== node) this.disconnect(node, other)
  }

  heal (): void {
    this.cut.clear()
  }

  private send (from: NodeId, to: NodeId, payload: Uint8Array): boolean {
    const link = `${from}->${to}`
    if (this.cut.has(link) || !this.receivers.has(to) || payload.length > (this.maxPayloadBytes ?? Infinity)) {
      setImmediate(() => this.receivers.get(from)?.onUnreachable(to))
      return false
    }
    const copy = payload.slice()
    this.inFlight++
    setImmediate(() => {
      this.inFlight--
      if (this.cut.has(link)) return
      this.delivered.set(link, (this.delivered.get(link) ?? 0) + 1)
      this.receivers.get(to)?.onBatch(from, copy)
    })
    return true
  }
}
