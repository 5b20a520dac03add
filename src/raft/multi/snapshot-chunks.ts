// Snapshots larger than one frame travel in pieces (SnapshotChunk in raft.proto): the
// sender splits the snapshot's data, each piece carrying the Snap message (data left empty)
// and its offset; the receiver puts them together in order, per sender and group. A piece
// out of order, of another snapshot, past the announced total or over the size limit drops
// the partial snapshot with a one-line reason; the leader sends the snapshot again when the
// follower does not catch up (it probes it on the next heartbeat response).
import type { Message, NodeId, Snapshot } from '../types.js'
import type { GroupId } from './raft-batch.js'

export interface SnapshotPiece {
  /** the Snap message, its snapshot's data empty */
  message: Message
  offset: number
  total: number
  data: Uint8Array
}

/** Splits a Snap message into pieces of at most `chunkBytes` bytes of snapshot data. */
export function splitSnapshot (m: Message, chunkBytes: number): SnapshotPiece[] {
  const snap = m.snapshot as Snapshot
  const total = snap.data.length
  const message: Message = { ...m, snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } }
  const pieces: SnapshotPiece[] = []
  for (let offset = 0; offset < total; offset += chunkBytes) {
    pieces.push({ message, offset, total, data: snap.data.subarray(offset, Math.min(total, offset + chunkBytes)) })
  }
  return pieces
}

interface Partial {
  message: Message
  total: number
  received: number
  parts: Uint8Array[]
}

export class SnapshotAssembler {
  private readonly partials = new Map<string, Partial>()

  /** `maxBytes`: largest snapshot accepted, and most bytes held in partial snapshots at once */
  constructor (private readonly maxBytes: number) {}

  /**
   * Adds a piece from `from` for `group`; returns the whole Snap message once its last piece
   * is in, else undefined. Throws a one-line reason (and drops the partial snapshot) for a
   * piece that does not fit.
   */
  add (from: NodeId, group: GroupId, piece: SnapshotPiece): Message | undefined {
    const key = `${from} ${group}`
    const md = piece.message.snapshot?.metadata
    if (md === undefined) throw new Error('snapshot piece without snapshot metadata')
    const { offset, total, data } = piece
    if (!Number.isSafeInteger(total) || total <= 0 || total > this.maxBytes) throw new Error(`snapshot piece announces ${total} bytes (limit ${this.maxBytes})`)
    if (data.length === 0 || offset + data.length > total) {
      this.partials.delete(key)
      throw new Error(`snapshot piece at ${offset} of ${data.length} bytes runs past the total ${total}`)
    }
    let partial = this.partials.get(key)
    if (offset === 0) {
      this.partials.delete(key)
      this.makeRoom(total)
      partial = { message: piece.message, total, received: 0, parts: [] }
      this.partials.set(key, partial)
    } else {
      const pmd = partial?.message.snapshot?.metadata
      if (partial === undefined || pmd === undefined || pmd.index !== md.index || pmd.term !== md.term || partial.message.term !== piece.message.term || partial.total !== total) {
        this.partials.delete(key)
        throw new Error(`snapshot piece at ${offset} belongs to no snapshot under way (index ${md.index})`)
      }
      if (offset !== partial.received) {
        this.partials.delete(key)
        throw new Error(`snapshot piece at ${offset}, expected the one at ${partial.received} (a piece was lost or replayed)`)
      }
    }
    partial.parts.push(data)
    partial.received += data.length
    if (partial.received < total) return undefined
    this.partials.delete(key)
    const whole = new Uint8Array(total)
    let at = 0
    for (const p of partial.parts) {
      whole.set(p, at)
      at += p.length
    }
    return { ...partial.message, snapshot: { metadata: md, data: whole } }
  }

  /** Forgets the partial snapshots of a group this node no longer hosts. */
  dropGroup (group: GroupId): void {
    for (const key of this.partials.keys()) if (key.endsWith(` ${group}`)) this.partials.delete(key)
  }

  /** bytes announced by the partial snapshots held */
  get heldBytes (): number {
    let sum = 0
    for (const p of this.partials.values()) sum += p.total
    return sum
  }

  /** Drops the oldest partial snapshots until `total` more bytes fit under the limit. */
  private makeRoom (total: number): void {
    for (const key of this.partials.keys()) {
      if (this.heldBytes + total <= this.maxBytes) return
      this.partials.delete(key)
    }
  }
}
