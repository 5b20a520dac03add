// What the multi-group raft host needs from a transport: deliver opaque encoded
// RaftBatch payloads to a peer, hand up the ones received (after the transport's own
// checks: signature, signer = connection peer, replay window), and say when a peer
// cannot be reached. Raft tolerates loss, so a send never blocks: it queues or drops.
import type { NodeId } from '../types.js'

export interface RaftReceiver {
  /** an authenticated batch from `from`; the payload is not yet decoded */
  onBatch: (from: NodeId, payload: Uint8Array) => void
  /** the transport gave up on delivering to `peer` (dropped, queue full, connection lost) */
  onUnreachable: (peer: NodeId) => void
}

export interface RaftTransport {
  /** queues `payload` for `to`; false when it was dropped (queue full, peer unknown) */
  send: (to: NodeId, payload: Uint8Array) => boolean
  setReceiver: (receiver: RaftReceiver) => void
  /** the largest payload one send carries (its frame limit); larger ones are dropped */
  readonly maxPayloadBytes?: number
}
