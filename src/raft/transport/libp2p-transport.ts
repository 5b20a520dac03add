// Raft over libp2p: protocol /stem/<mesh>/raft/1. Each outgoing payload (an encoded
// RaftBatch) travels as one signed Frame (SPEC §3), length-prefixed, on one long-lived
// outbound stream per peer that is reused for every frame and re-dialled with backoff when
// it breaks. Queues are bounded: when a peer's queue is full, or the peer is in backoff
// after a failed dial, the payload is dropped and the peer reported unreachable (raft
// retransmits). Inbound streams are read frame by frame; a frame that fails verification
// (signature, signer ≠ connection peer, replay, staleness, size) is counted and skipped.
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidDataLengthError, InvalidDataLengthLengthError, lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { createFrameVerifier } from '../../wire/frame.js'
import type { FrameSigner, FrameVerifier } from '../../wire/frame.js'
import { createLogger } from '../../util/logger.js'
import type { NodeId } from '../types.js'
import type { RaftReceiver, RaftTransport } from './types.js'

export function raftProtocol (mesh: string): string {
  return `/stem/${mesh}/raft/1`
}

export interface Libp2pRaftTransportComponents {
  /** the libp2p node (only its protocol registration and dialling are used) */
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  /** signs outgoing frames with this node's key */
  signer: FrameSigner
  /** checks incoming frames; a fresh one (default options) if not given */
  verifier?: FrameVerifier
}

export interface Libp2pRaftTransportInit {
  mesh: string
  /** payloads queued per peer before new ones are dropped (default 1024) */
  maxQueuedFrames?: number
  /** bytes queued per peer before new payloads are dropped (default 64 MiB) */
  maxQueuedBytes?: number
  /** largest frame sent or accepted (default 16 MiB) */
  maxFrameBytes?: number
  /** first and largest wait before re-dialling a peer that failed (default 50 ms, 2 s) */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** time allowed for opening a stream or writing a frame (default 5 s) */
  timeoutMs?: number
}

export interface Libp2pRaftTransportStats {
  framesSent: number
  bytesSent: number
  framesReceived: number
  /** frames that failed verification or framing */
  framesRejected: number
  /** payloads dropped: queue full, peer in backoff, or lost with a broken stream */
  framesDropped: number
  dials: number
  dialFailures: number
}

interface Outbound {
  peer: NodeId
  queue: Uint8Array[]
  queuedBytes: number
  stream?: Stream
  lp?: LengthPrefixedStream<Stream>
  pumping: boolean
  backoffMs: number
  retryAt: number
}

export class Libp2pRaftTransport implements RaftTransport {
  readonly protocol: string
  readonly stats: Libp2pRaftTransportStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, framesRejected: 0, framesDropped: 0, dials: 0, dialFailures: 0 }
  readonly verifier: FrameVerifier
  private readonly libp2p: Libp2pRaftTransportComponents['libp2p']
  private readonly signer: FrameSigner
  private readonly maxQueuedFrames: number
  private readonly maxQueuedBytes: number
  private readonly maxFrameBytes: number
  /** the frame limit less room for the frame's own fields and signature */
  readonly maxPayloadBytes: number
  private readonly minBackoffMs: number
  private readonly maxBackoffMs: number
  private readonly timeoutMs: number
  private readonly outbound = new Map<NodeId, Outbound>()
  private readonly inbound = new Set<Stream>()
  private receiver: RaftReceiver = { onBatch: () => {}, onUnreachable: () => {} }
  private running = false
  private readonly log = createLogger('raft-transport')

  constructor (components: Libp2pRaftTransportComponents, init: Libp2pRaftTransportInit) {
    this.libp2p = components.libp2p
    this.signer = components.signer
    this.protocol = raftProtocol(init.mesh)
    this.maxQueuedFrames = init.maxQueuedFrames ?? 1024
    this.maxQueuedBytes = init.maxQueuedBytes ?? 64 * 1024 * 1024
    this.maxFrameBytes = init.maxFrameBytes ?? 16 * 1024 * 1024
    this.maxPayloadBytes = this.maxFrameBytes - 256
    this.minBackoffMs = init.minBackoffMs ?? 50
    this.maxBackoffMs = init.maxBackoffMs ?? 2000
    this.timeoutMs = init.timeoutMs ?? 5000
    this.verifier = components.verifier ?? createFrameVerifier({ maxBytes: this.maxFrameBytes, name: 'raft-frames' })
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.libp2p.handle(this.protocol, (stream, connection) => { void this.readInbound(stream, connection) }, {
      maxInboundStreams: 8,
      runOnLimitedConnection: false
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.libp2p.unhandle(this.protocol)
    for (const out of this.outbound.values()) {
      out.queue = []
      out.queuedBytes = 0
      out.stream?.abort(new Error('raft transport stopped'))
    }
    this.outbound.clear()
    for (const s of this.inbound) s.abort(new Error('raft transport stopped'))
    this.inbound.clear()
  }

  setReceiver (receiver: RaftReceiver): void {
    this.receiver = receiver
  }

  send (to: NodeId, payload: Uint8Array): boolean {
    if (!this.running) return false
    let out = this.outbound.get(to)
    if (out === undefined) {
      out = { peer: to, queue: [], queuedBytes: 0, pumping: false, backoffMs: this.minBackoffMs, retryAt: 0 }
      this.outbound.set(to, out)
    }
    if ((out.stream === undefined && Date.now() < out.retryAt) ||
      out.queue.length >= this.maxQueuedFrames || out.queuedBytes + payload.length > this.maxQueuedBytes ||
      payload.length > this.maxPayloadBytes) {
      this.stats.framesDropped++
      return false
    }
    out.queue.push(payload)
    out.queuedBytes += payload.length
    if (!out.pumping) void this.pump(out)
    return true
  }

  /** Writes the peer's queue in order on its stream, dialling it first if needed. */
  private async pump (out: Outbound): Promise<void> {
    out.pumping = true
    try {
      while (out.queue.length > 0 && this.running) {
        if (out.lp === undefined) await this.connect(out)
        const payload = out.queue.shift()!
        out.queuedBytes -= payload.length
        const frame = this.signer.sign('raft', payload)
        // a cleared timer, not AbortSignal.timeout: that one fires (building a DOMException
        // and running abort steps) for every frame long after it was written
        const deadline = new AbortController()
        const timer = setTimeout(() => { deadline.abort(new Error(`raft frame to ${out.peer} not written within ${this.timeoutMs} ms`)) }, this.timeoutMs)
        try {
          await out.lp!.write(frame, { signal: deadline.signal })
        } finally {
          clearTimeout(timer)
        }
        this.stats.framesSent++
        this.stats.bytesSent += frame.length
      }
    } catch (err) {
      this.fail(out, err as Error)
    } finally {
      out.pumping = false
    }
  }

  private async connect (out: Outbound): Promise<void> {
    this.stats.dials++
    let stream: Stream
    try {
      stream = await this.libp2p.dialProtocol(peerIdFromString(out.peer), this.protocol, { signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (err) {
      this.stats.dialFailures++
      throw err
    }
    if (!this.running) {
      stream.abort(new Error('raft transport stopped'))
      throw new Error('raft transport stopped')
    }
    out.stream = stream
    out.lp = lpStream(stream, { maxDataLength: this.maxFrameBytes })
    out.backoffMs = this.minBackoffMs
    stream.addEventListener('close', () => {
      if (out.stream !== stream) return
      // the connection broke (peer killed, network gone): raft hears of it at once, so
      // quiet groups led by that peer wake up and elect
      out.stream = undefined
      out.lp = undefined
      if (this.running) this.receiver.onUnreachable(out.peer)
    })
  }

  /** The peer's stream broke or could not be opened: drop its queue, back off, tell raft. */
  private fail (out: Outbound, err: Error): void {
    this.log.debug(`raft frames to ${out.peer} dropped: ${err.message}`)
    const stream = out.stream
    out.stream = undefined
    out.lp = undefined
    stream?.abort(err)
    this.stats.framesDropped += out.queue.length + 1
    out.queue = []
    out.queuedBytes = 0
    out.retryAt = Date.now() + out.backoffMs
    out.backoffMs = Math.min(out.backoffMs * 2, this.maxBackoffMs)
    if (this.running) this.receiver.onUnreachable(out.peer)
  }

  private async readInbound (stream: Stream, connection: Connection): Promise<void> {
    if (!this.running) {
      stream.abort(new Error('raft transport stopped'))
      return
    }
    this.inbound.add(stream)
    const remotePeer = connection.remotePeer.toString()
    const lp = lpStream(stream, { maxDataLength: this.maxFrameBytes })
    try {
      while (this.running) {
        const buf = await lp.read()
        const result = this.verifier.verify(buf.subarray(), { remotePeer, expect: 'raft' })
        if (!result.ok) {
          this.stats.framesRejected++
          continue
        }
        this.stats.framesReceived++
        this.receiver.onBatch(result.sender, result.payload)
      }
    } catch (err) {
      // end of stream, or a frame over the size limit: that stream is done either way
      if (err instanceof InvalidDataLengthError || err instanceof InvalidDataLengthLengthError) {
        this.stats.framesRejected++
        this.log.debug(`raft stream from ${remotePeer} aborted: ${err.message}`)
      }
      if (stream.status === 'open') stream.abort(err as Error)
    } finally {
      this.inbound.delete(stream)
    }
  }
}

export function createLibp2pRaftTransport (components: Libp2pRaftTransportComponents, init: Libp2pRaftTransportInit): Libp2pRaftTransport {
  return new Libp2pRaftTransport(components, init)
}
