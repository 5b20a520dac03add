// Typed events and counters of the cell messaging component (metrics hooks).
export interface CellMessagingEvents {
  /** a frame (or stream) from `peer` was refused */
  'frame:rejected': CustomEvent<{ peer: string, reason: string }>
  /** the connection to an abusive peer was closed */
  'peer:closed': CustomEvent<{ peer: string, reason: string }>
  /** an ask was re-sent once, to where the cell is now */
  'ask:rerouted': CustomEvent<{ address: string, from: string, to: string }>
  /** an ask through askJson/ask settled (dispatched only while someone listens): its scope and duration */
  'ask:done': CustomEvent<{ address: string, scope: 'local' | 'remote', ok: boolean, seconds: number }>
}

export type MessageKind = 'ask' | 'tell' | 'reply' | 'transform'

export interface CellMessagingCounters {
  /** messages (asks, tells, replies, transforms) sent to / received from peers */
  messagesOut: number
  messagesIn: number
  /** the same by direction and kind */
  messages: { in: Record<MessageKind, number>, out: Record<MessageKind, number> }
  framesOut: number
  framesIn: number
  /** asks answered from the dedupe window instead of running again */
  dedupeHits: number
  /** asks re-sent after a "not here" answer */
  rerouted: number
  /** sends refused because a peer's outbound queue was full */
  backpressure: number
  /** tells a receiver could not deliver (no such cell, or the cell answered with an error) */
  tellsDropped: number
  /** streams refused because the peer had too many open */
  streamsRefused: number
  /** connections closed because the peer sent too many bad frames */
  peersClosed: number
  /** rejected frames by reason (frame verifier reasons, 'oversized', 'malformed-batch', 'unexpected-reply') */
  rejected: Record<string, number>
}
