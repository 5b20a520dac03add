// One cell-protocol stream to one peer, used both ways: asks, tells and transforms go out,
// replies come back (and the other way round on a stream the peer opened). Outgoing
// messages wait in a bounded queue and leave as batches: one signed frame per flush
// (once the current synchronous run ends, or as soon as `flushBytes` are queued). When the stream
// asks for a drain, flushing stops until it drains: a slow link fills the queue, and a
// full queue refuses more (the caller sees 'backpressure').
import { CellBatch, CellEnvelope } from '../wire/proto/cell.js'
import type { FrameSigner, FrameVerifier } from '../wire/frame.js'
import type { Stream } from '@libp2p/interface'
import { readFrames, writeFrame } from './framing.js'
import type { FrameReader } from './framing.js'
import { encodeBatch } from './envelope-codec.js'

export interface ChannelInit {
  stream: Stream
  /** remote peer id */
  peer: string
  signer: FrameSigner
  verifier: FrameVerifier
  maxFrameBytes: number
  flushBytes: number
  maxQueuedBytes: number
  /** what the stream may buffer while reading is paused: at least the muxer's largest window */
  maxReadBufferBytes: number
  onEnvelope: (envelope: CellEnvelope, channel: CellChannel) => void
  /** a frame was rejected: reason from the frame verifier (already counted there: `verifier`), or 'oversized' / 'malformed-batch' */
  onReject: (reason: string, channel: CellChannel, verifier: boolean) => void
  onClose: (channel: CellChannel) => void
  /** the queue went below half its bound (writers waiting for room may go on) */
  onWritable: (channel: CellChannel) => void
}

export class CellChannel {
  readonly peer: string
  readonly stream: Stream
  private queue: Uint8Array[] = []
  private queued = 0
  private scheduled = false
  private draining = false
  private closed = false
  private paused = false
  private readonly reader: FrameReader
  frameCount = 0

  constructor (private readonly init: ChannelInit) {
    this.peer = init.peer
    this.stream = init.stream
    // while paused, data already granted by the muxer's flow-control window keeps
    // arriving into the stream's buffer; it must fit (yamux grows a stream's window up
    // to 16 MiB by default) or the stream is aborted
    init.stream.maxReadBufferLength = Math.max(init.stream.maxReadBufferLength, init.maxReadBufferBytes)
    this.reader = readFrames(init.stream, init.maxFrameBytes, {
      onFrame: frame => { this.receive(frame) },
      onOversized: () => { init.onReject('oversized', this, false) },
      onClose: () => { this.close() },
      paused: () => this.paused
    })
  }

  get open (): boolean {
    return !this.closed && this.stream.status === 'open'
  }

  /** bytes waiting to be sent */
  get queuedBytes (): number {
    return this.queued
  }

  /** true while the stream wants a drain or the queue is at least half full */
  get congested (): boolean {
    return this.draining || this.queued >= this.init.maxQueuedBytes / 2
  }

  hasRoom (bytes: number): boolean {
    return this.queued + bytes <= this.init.maxQueuedBytes
  }

  /** Queue an encoded CellEnvelope. The caller checked hasRoom (replies may exceed it: they are bounded by inflight asks). */
  send (envelope: Uint8Array): void {
    if (this.closed) return
    this.queue.push(envelope)
    this.queued += envelope.byteLength
    if (this.queued >= this.init.flushBytes) this.flush()
    else if (!this.scheduled) {
      // after the current synchronous run: a burst of sends is one batch, a lone ask
      // leaves without waiting for the next turn of the event loop
      this.scheduled = true
      queueMicrotask(() => { this.scheduled = false; this.flush() })
    }
  }

  /** Stop taking frames: the stream stops granting window, so the sender's writes wait. */
  pause (): void {
    if (this.paused || !this.open) return
    this.paused = true
    if (this.stream.readStatus === 'readable') this.stream.pause()
  }

  resume (): void {
    if (!this.paused || !this.open) return
    this.paused = false
    this.reader.resume()
    if (this.paused) return
    if (this.stream.readStatus === 'paused') this.stream.resume()
  }

  close (error?: Error): void {
    if (this.closed) return
    this.closed = true
    this.queue = []
    this.queued = 0
    if (error !== undefined) this.stream.abort(error)
    else if (this.stream.status === 'open') this.stream.close().catch(() => { this.stream.abort(new Error('cell channel closed')) })
    this.init.onClose(this)
  }

  /** `wasCongested`: a drain that ends with an empty queue must still wake the writers waiting on it */
  private flush (wasCongested = this.congested): void {
    while (this.queue.length > 0 && !this.draining && this.open) {
      let bytes = 0
      let n = 0
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n].byteLength <= this.init.flushBytes)) {
        bytes += this.queue[n].byteLength
        n++
      }
      const messages = this.queue.slice(0, n)
      this.queue = n === this.queue.length ? [] : this.queue.slice(n)
      this.queued -= bytes
      const frame = this.init.signer.sign('cell', encodeBatch(messages))
      let accepted: boolean
      try {
        accepted = writeFrame(this.stream, frame)
      } catch (err) {
        this.close(err as Error)
        return
      }
      this.frameCount++
      if (!accepted) {
        this.draining = true
        this.stream.onDrain().then(() => {
          this.draining = false
          this.flush(true)
        }, () => { this.close() })
      }
    }
    if (wasCongested && !this.congested) this.init.onWritable(this)
  }

  private receive (bytes: Uint8Array): void {
    const verified = this.init.verifier.verify(bytes, { remotePeer: this.peer, expect: 'cell' })
    if (!verified.ok) {
      this.init.onReject(verified.reason, this, true)
      return
    }
    let envelopes: CellEnvelope[]
    try {
      const batch = CellBatch.decode(verified.payload)
      envelopes = batch.messages.map(m => CellEnvelope.decode(m))
    } catch {
      this.init.onReject('malformed-batch', this, false)
      return
    }
    for (const envelope of envelopes) {
      if (this.closed) return
      this.init.onEnvelope(envelope, this)
    }
  }
}
