// The pure Raft core: no I/O, no timers, no ambient randomness.
import { RawNode } from './raw-node.js'
import type { RawNodeConfig } from './raw-node.js'

export { RawNode, InvalidMessageError } from './raw-node.js'
export type { RawNodeConfig, Status, ProgressStatus } from './raw-node.js'
export { LOG_LOST, ProposalDroppedError } from './raft.js'
export type { RaftConfig } from './raft.js'
export { MemoryLogStorage } from './memory-storage.js'
export { ProgressState } from './progress.js'
export { encodeConfChange, decodeConfChange } from './conf-change-codec.js'
export { makeMessage, checkMessage } from './messages.js'
export { entrySize } from './entry-size.js'
export { createRand } from './rand.js'

export function createRawNode (config: RawNodeConfig): RawNode {
  return new RawNode(config)
}
