// The link between a node and one of its cell hosts: a Unix socket pair (fd 3 in the
// host) carrying frames [u32 big-endian length][payload], the payload one batch (a JSON
// array of messages, protocol.ts). One frame is one write(2). JSON, not V8's serializer:
// it is 5–10× faster for these small messages, and JSON.parse of a bounded text cannot do
// more than build that text's values.
// The decoder trusts nothing: a frame past the limit is refused from its header (before
// its payload is buffered), a payload that is not an array of messages is refused, and a
// link that ends inside a frame says so. Each error is one line (LinkError).

/** bytes of the length prefix */
const HEADER = 4
/** the frame limit with the default bounds, bytes */
const BASE_FRAME_BYTES = 64 * 1024 * 1024

/** A frame that cannot be read; `message` is one line naming what is wrong. */
export class LinkError extends Error {}

/** A message of either direction: an object naming its type. */
export interface LinkMessage { t: string }

/**
 * Largest frame on a link whose texts (arguments, results, states) are bounded by
 * `maxMessageBytes` characters: JSON may write a character as 6 bytes (\u001f), and a
 * transform carries a bundle's code besides a state.
 */
export function maxFrameBytes (maxMessageBytes: number): number {
  return BASE_FRAME_BYTES + 12 * maxMessageBytes
}

/**
 * One frame holding `batch`, or several if it is over `limit` (a batch of many large
 * messages). Throws a LinkError if one message alone does not fit.
 */
export function encodeFrames (batch: readonly LinkMessage[], limit: number): Buffer[] {
  const text = JSON.stringify(batch)
  const size = Buffer.byteLength(text)
  if (size + HEADER <= limit) {
    const frame = Buffer.allocUnsafe(HEADER + size)
    frame.writeUInt32BE(size, 0)
    frame.write(text, HEADER)
    return [frame]
  }
  if (batch.length === 1) throw new LinkError(`a '${batch[0].t}' message of ${size} bytes does not fit the cell host link (limit ${limit} bytes)`)
  const half = batch.length >> 1
  return [...encodeFrames(batch.slice(0, half), limit), ...encodeFrames(batch.slice(half), limit)]
}

/** Reads frames from a byte stream's chunks; each complete frame's batch goes to `onBatch`. */
export class FrameDecoder<T extends LinkMessage> {
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** length of the frame being gathered (payload bytes), -1 before its header is complete */
  private want = -1

  constructor (private readonly limit: number, private readonly onBatch: (batch: T[]) => void) {}

  /** bytes held of an incomplete frame */
  get buffered (): number {
    return this.pendingBytes
  }

  /** Feeds a chunk. Throws a LinkError on a bad frame; the link must then be closed (its framing is lost). */
  push (chunk: Buffer): void {
    let at = 0
    // the common case: whole frames in one chunk, decoded where they lie (no copy)
    if (this.pendingBytes === 0) {
      while (chunk.byteLength - at >= HEADER) {
        const size = this.frameSize(chunk.readUInt32BE(at))
        if (chunk.byteLength - at - HEADER < size) break
        this.onBatch(decodePayload<T>(chunk, at + HEADER, at + HEADER + size))
        at += HEADER + size
      }
      if (at === chunk.byteLength) return
    }
    this.pending.push(at === 0 ? chunk : chunk.subarray(at))
    this.pendingBytes += chunk.byteLength - at
    this.drainPending()
  }

  /** The stream ended: throws a LinkError if it ended inside a frame. */
  end (): void {
    if (this.pendingBytes === 0) return
    const of = this.want >= 0 ? `${this.pendingBytes} of ${HEADER + this.want}` : `${this.pendingBytes} of ${HEADER}`
    throw new LinkError(`the cell host link ended inside a frame (${of} bytes)`)
  }

  private drainPending (): void {
    for (;;) {
      if (this.want < 0) {
        if (this.pendingBytes < HEADER) return
        this.joinPending()
        this.want = this.frameSize(this.pending[0].readUInt32BE(0))
      }
      if (this.pendingBytes < HEADER + this.want) return
      const all = this.joinPending()
      const end = HEADER + this.want
      this.want = -1
      const rest = all.subarray(end)
      this.pending = rest.byteLength > 0 ? [rest] : []
      this.pendingBytes = rest.byteLength
      this.onBatch(decodePayload<T>(all, HEADER, end))
    }
  }

  private joinPending (): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)]
    return this.pending[0]
  }

  private frameSize (size: number): number {
    if (size + HEADER > this.limit) throw new LinkError(`an oversized frame on the cell host link: ${size} bytes, limit ${this.limit - HEADER}`)
    return size
  }
}

function decodePayload<T extends LinkMessage> (bytes: Buffer, start: number, end: number): T[] {
  let batch: unknown
  try {
    batch = JSON.parse(bytes.toString('utf8', start, end))
  } catch (err) {
    throw new LinkError(`a malformed frame on the cell host link: ${(err as Error).message.split('\n')[0]}`)
  }
  if (!Array.isArray(batch)) throw new LinkError('a malformed frame on the cell host link: not an array of messages')
  for (const message of batch as unknown[]) {
    if (message === null || typeof message !== 'object' || typeof (message as { t?: unknown }).t !== 'string') {
      throw new LinkError('a malformed frame on the cell host link: a message without a type')
    }
  }
  return batch as T[]
}
