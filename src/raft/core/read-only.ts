// Pending linearizable reads on the leader (etcd's readOnly, "safe" option): each read is
// answered only after a quorum acknowledged a heartbeat carrying its context, which proves
// that no newer leader existed when the read's index was taken.
import type { Message, NodeId } from '../types.js'

interface ReadIndexStatus {
  req: Message
  index: number
  acks: Set<NodeId>
}

function key (ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('latin1')
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>()
  private queue: string[] = []

  /** Registers a read of `req.context` at commit index `index`; a duplicate context is ignored. */
  addRequest (index: number, req: Message): void {
    const k = key(req.context)
    if (this.pending.has(k)) return
    this.pending.set(k, { req, index, acks: new Set() })
    this.queue.push(k)
  }

  /** Records a heartbeat acknowledgement; returns the acks of that read so far. */
  recvAck (id: NodeId, ctx: Uint8Array): Set<NodeId> | undefined {
    const rs = this.pending.get(key(ctx))
    if (rs === undefined) return undefined
    rs.acks.add(id)
    return rs.acks
  }

  /** Releases the read with this context and every read queued before it. */
  advance (ctx: Uint8Array): Array<{ req: Message, index: number }> {
    const k = key(ctx)
    const at = this.queue.indexOf(k)
    if (at < 0) return []
    const done = this.queue.slice(0, at + 1)
    this.queue = this.queue.slice(at + 1)
    const out: Array<{ req: Message, index: number }> = []
    for (const d of done) {
      const rs = this.pending.get(d)
      if (rs !== undefined) out.push({ req: rs.req, index: rs.index })
      this.pending.delete(d)
    }
    return out
  }

  lastPendingContext (): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined
    return this.pending.get(this.queue[this.queue.length - 1])?.req.context
  }
}
