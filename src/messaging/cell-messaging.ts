// The cell protocol /stem/<mesh>/cell/1: asks and tells between cells on different nodes.
//
// Sending: an address is resolved through the CellDirectory; cells of this node are asked
// through the runtime directly, others through one long-lived stream per peer
// (CellChannel: bounded queue, batches under one signature per frame, drain-aware).
// A "not here" answer re-routes an ask once (fresh directory entry, else the receiver's
// hint) with the same message id.
//
// Receiving: messages of a stream run in arrival order, at most `maxInflightPerStream` at
// a time; while that many are running, a cell's mailbox is full, or the replies cannot
// leave fast enough, the stream is paused, so the sender's stream fills and its queue
// refuses more: backpressure end to end, with bounded memory on both sides.
// Retried asks (same sender, same id) are answered from a bounded dedupe window; the cell
// runtime keeps each instance's own reply window by the same key (sender/id), which travels
// with the instance's state, so a retry that reaches a new primary runs once too.
import { randomFillSync } from 'node:crypto'
import { TypedEventEmitter } from '@libp2p/interface'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CellEnvelope, ReplyStatus } from '../wire/proto/cell.js'
import type { CellAsk, CellTell, CellTransform, CellReply } from '../wire/proto/cell.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner, FrameVerifier } from '../wire/frame.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import type { CellRuntime, CellInfo } from '../cells/runtime.js'
import type { CellRouter } from '../cells/router.js'
import type { CellLimits } from '../cells/limits.js'
import { parseAddress } from '../cells/address.js'
import { shardAddress } from '../cells/keys.js'
import { CellChannel } from './channel.js'
import { encodeEnvelope } from './envelope-codec.js'
import { DedupeWindow } from './dedupe.js'
import type { DedupeResult, DedupeWindowOptions } from './dedupe.js'
import type { CellDirectory } from './directory.js'
import type { BundleExchange } from './code-exchange.js'
import { localError, MessagingError, remoteError } from './errors.js'
import { replyOfError, splitReply, timeoutText } from '../cells/reply-meta.js'
import { StateNotSafeError } from '../cells/reply-window.js'
import type { CellMessagingEvents, CellMessagingCounters, MessageKind } from './events.js'

export interface CellMessagingComponents {
  libp2p: Libp2p
  runtime: CellRuntime
  directory: CellDirectory
  /** signs this node's cell frames (one signer per node key and process) */
  signer: FrameSigner
  /** fetches bundles for remote transforms; without it, transform requests are refused */
  bundles?: BundleExchange
  /** whether the node judged `peer` down: asks to it fail at once ('unreachable') rather than wait on a dial to a stalled node */
  peerDown?: (peer: string) => boolean
  logger?: Logger
}

export interface CellMessagingInit {
  mesh: string
  /** a batch is flushed once the current synchronous run ends (microtask), or as soon as this many bytes are queued (default 64 KiB) */
  flushBytes?: number
  /** bound of each peer's outbound queue, bytes (default 4 MiB) */
  maxQueuedBytes?: number
  /** largest frame accepted or sent (default: twice the runtime's largest message + 64 KiB) */
  maxFrameBytes?: number
  /** what one stream may buffer while its reading is paused: at least the muxer's largest stream window (default 16 MiB + one frame, yamux's default) */
  maxReadBufferBytes?: number
  /** messages of one inbound stream running at once (default 256) */
  maxInflightPerStream?: number
  /** cell streams one peer may have open towards this node (default 4) */
  maxStreamsPerPeer?: number
  /** bad frames after which a peer's connection is closed (default 16) */
  maxBadFrames?: number
  /** default ask deadline, ms from now (default 30 s) */
  askTimeout?: number
  dedupe?: DedupeWindowOptions
  /** why `peer` may not transform this cell here, or undefined if it may (default: any peer of the mesh may; the node narrows it to the app's group) */
  refuseTransform?: (peer: string, request: RemoteTransformRequest) => string | undefined
}

export interface MessageOptions {
  /** the same id on a retry makes the receiver run the ask once: 32 hex digits or 16 bytes (default: random) */
  messageId?: string | Uint8Array
  /** ms since the epoch (default now + askTimeout) */
  deadline?: number
  signal?: AbortSignal
  /** address of the asking cell, if any */
  from?: string
}

export interface RemoteTransformRequest {
  /** `app/cell#i` on the target node */
  address: string
  /** sha256 content id (hex) of the bundle */
  bundle: string
  /** protobuf-encoded Ed25519 public key of the app owner */
  owner: Uint8Array
  limits?: CellLimits
  state?: string
  version?: number
  /** the reply window that came with `state` */
  replies?: string
  replace?: boolean
  /** the placement epoch the leader starts it in (the receiver refuses one it knows to be superseded) */
  epoch?: number
}

interface PendingAsk {
  id: Uint8Array
  key: string
  address: string
  envelope: CellAsk | CellTransform
  peer: string
  channel?: CellChannel
  rerouted: boolean
  promise: Promise<string>
  resolve: (text: string) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  cleanup?: () => void
}

function judgedDown (peer: string): MessagingError {
  return new MessagingError('unreachable', `cannot reach node ${peer}: it is judged down (the cell is failing over: retry)`)
}

interface PeerLink {
  peer: string
  channel?: CellChannel
  opening?: Promise<void>
  /** abandons the dial under way (its peer was judged down) */
  abandon?: AbortController
  /** envelopes queued while the stream is being opened */
  waiting: Uint8Array[]
  waitingBytes: number
  writers: Array<() => void>
}

type InboundWork = { kind: 'ask', ask: CellAsk } | { kind: 'tell', tell: CellTell } | { kind: 'transform', transform: CellTransform }

interface InboundState {
  /** messages received and not started yet, in order (at most one frame's worth, since reading pauses) */
  queue: InboundWork[]
  /** index of the next one to start */
  head: number
  inflight: number
  retry?: NodeJS.Timeout
}

const MAILBOX_FULL = /^mailbox of .* is full/

export class CellMessaging extends TypedEventEmitter<CellMessagingEvents> {
  readonly protocol: string
  /** plugged into the runtime on start: asks from cells reach cells on any node */
  readonly router: CellRouter
  private readonly self: string
  private readonly verifier: FrameVerifier
  private readonly log: Logger
  private readonly dedupe: DedupeWindow
  private readonly links = new Map<string, PeerLink>()
  private readonly inbound = new Map<CellChannel, InboundState>()
  private readonly inboundByPeer = new Map<string, Set<CellChannel>>()
  private readonly pending = new Map<string, PendingAsk>()
  private readonly badFrames = new Map<string, number>()
  private readonly counters: Omit<CellMessagingCounters, 'rejected'> & { rejected: Record<string, number> } = {
    messagesOut: 0, messagesIn: 0, messages: { in: noMessages(), out: noMessages() }, framesOut: 0, framesIn: 0, dedupeHits: 0, rerouted: 0, backpressure: 0, tellsDropped: 0, streamsRefused: 0, peersClosed: 0, rejected: {}
  }

  private readonly opts: Required<Omit<CellMessagingInit, 'dedupe' | 'refuseTransform'>>
  private running = false

  constructor (private readonly components: CellMessagingComponents, private readonly init: CellMessagingInit) {
    super()
    this.protocol = `/stem/${init.mesh}/cell/1`
    this.self = components.libp2p.peerId.toString()
    this.log = components.logger ?? createLogger('messaging')
    this.opts = {
      mesh: init.mesh,
      flushBytes: init.flushBytes ?? 64 * 1024,
      maxQueuedBytes: init.maxQueuedBytes ?? 4 * 1024 * 1024,
      maxFrameBytes: init.maxFrameBytes ?? components.runtime.bounds.maxMessageBytes * 2 + 64 * 1024,
      maxInflightPerStream: init.maxInflightPerStream ?? 256,
      maxReadBufferBytes: init.maxReadBufferBytes ?? 16 * 1024 * 1024 + (init.maxFrameBytes ?? components.runtime.bounds.maxMessageBytes * 2 + 64 * 1024),
      maxStreamsPerPeer: init.maxStreamsPerPeer ?? 4,
      maxBadFrames: init.maxBadFrames ?? 16,
      askTimeout: init.askTimeout ?? 30_000
    }
    // frames of one signer arrive over two streams (its asks, its replies) and may
    // interleave: a wide replay window keeps that from looking like replays
    this.verifier = createFrameVerifier({ maxBytes: this.opts.maxFrameBytes, replayWindow: 16384, name: 'cell' })
    this.dedupe = new DedupeWindow(init.dedupe)
    this.router = {
      ask: (address, method, argsJson, options) => this.askJson(address, method, argsJson, { deadline: options.deadline, signal: options.signal, from: options.from }),
      tell: (address, method, argsJson, options) => {
        try {
          this.tellJson(address, method, argsJson, { from: options.from })
        } catch (err) {
          this.log.debug(`tell to ${address} dropped: ${(err as Error).message}`)
        }
      }
    }
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { this.accept(stream, connection) }, {
      // libp2p refuses streams beyond this per connection; accept() bounds them per peer
      maxInboundStreams: this.opts.maxStreamsPerPeer * 2,
      maxOutboundStreams: this.opts.maxStreamsPerPeer
    })
    this.components.runtime.setRouter(this.router)
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.components.runtime.setRouter(this.components.runtime.localRouter)
    await this.components.libp2p.unhandle(this.protocol)
    for (const pending of [...this.pending.values()]) this.settle(pending, new MessagingError('stopped', `ask to ${pending.address} abandoned: messaging stopped`))
    for (const link of this.links.values()) link.channel?.close()
    for (const channel of [...this.inbound.keys()]) channel.close()
    this.links.clear()
  }

  counts (): CellMessagingCounters {
    const rejected = { ...this.counters.rejected }
    for (const [reason, n] of Object.entries(this.verifier.counts())) if (n > 0) rejected[reason] = (rejected[reason] ?? 0) + n
    let framesOut = 0
    for (const link of this.links.values()) framesOut += link.channel?.frameCount ?? 0
    for (const channel of this.inbound.keys()) framesOut += channel.frameCount
    const messages = { in: { ...this.counters.messages.in }, out: { ...this.counters.messages.out } }
    return { ...this.counters, messages, framesOut: this.counters.framesOut + framesOut, dedupeHits: this.counters.dedupeHits + this.components.runtime.dedupeHits, rejected }
  }

  /** Bytes queued towards `peer` (waiting for the stream to open or to drain). */
  queuedBytes (peer: string): number {
    const link = this.links.get(peer)
    return link === undefined ? 0 : link.waitingBytes + (link.channel?.queuedBytes ?? 0)
  }

  /** Entries in the dedupe window. */
  dedupeSize (): number {
    return this.dedupe.size
  }

  /** Ask a cell on any node: arguments and result are JSON-like values. */
  async ask (address: string, method: string, args: unknown[] = [], options: MessageOptions = {}): Promise<unknown> {
    return JSON.parse(splitReply(await this.askJson(address, method, JSON.stringify(args), options)).head)
  }

  /**
   * Fire and forget: at most once. Throws at once if the address is unknown or the
   * peer's outbound queue is full ('backpressure': wait with whenWritable, or drop).
   */
  tell (address: string, method: string, args: unknown[] = [], options: Pick<MessageOptions, 'from'> = {}): void {
    this.tellJson(address, method, JSON.stringify(args), options)
  }

  askJson (to: string, method: string, argsJson: string, options: MessageOptions = {}): Promise<string> {
    try {
      this.assertRunning()
      const address = this.withShard(to)
      const id = messageIdBytes(options.messageId)
      const deadline = options.deadline ?? Date.now() + this.opts.askTimeout
      const target = this.resolve(address)
      // the key a retry has in common with its first try, wherever the instance is by then
      const messageKey = `${this.self}/${Buffer.from(id).toString('hex')}`
      if (target === 'local') return this.timed(address, 'local', this.components.runtime.askJson(address, method, argsJson, { deadline, signal: options.signal, from: options.from, messageKey }).catch((err: unknown) => { throw localError(err) }))
      if (this.components.peerDown?.(target) === true) throw judgedDown(target)
      const ask: CellAsk = { id, to: address, method, args: argsJson, deadline: BigInt(deadline), from: options.from ?? '' }
      return this.timed(address, 'remote', this.request(target, address, ask, { ask }, deadline, options.signal))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Reports the ask's duration ('ask:done') once it settles, only while someone listens (the node's metrics). */
  private timed (address: string, scope: 'local' | 'remote', answer: Promise<string>): Promise<string> {
    if (this.listenerCount('ask:done') === 0) return answer
    const started = performance.now()
    const done = (ok: boolean): void => { this.safeDispatchEvent('ask:done', { detail: { address, scope, ok, seconds: (performance.now() - started) / 1000 } }) }
    answer.then(() => { done(true) }, () => { done(false) })
    return answer
  }

  tellJson (to: string, method: string, argsJson: string, options: Pick<MessageOptions, 'from'> = {}): void {
    this.assertRunning()
    const address = this.withShard(to)
    const target = this.resolve(address)
    if (target === 'local') {
      this.components.runtime.tellJson(address, method, argsJson, options.from)
      return
    }
    this.sendTo(target, { tell: { to: address, method, args: argsJson, from: options.from ?? '', hops: 0 } })
  }

  /** Resolves when the queue towards the node of `address` (or peer id) has room again. */
  async whenWritable (addressOrPeer: string, signal?: AbortSignal): Promise<void> {
    const peer = addressOrPeer.includes('/') ? this.components.directory.resolve(addressOrPeer)?.peer : addressOrPeer
    const link = peer !== undefined ? this.links.get(peer) : undefined
    if (link === undefined || !this.linkCongested(link)) return
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    const onAbort = (): void => { reject(new MessagingError('aborted', 'wait for a writable queue aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
    link.writers.push(() => { signal?.removeEventListener('abort', onAbort); resolve() })
    return promise
  }

  /**
   * Transform a stem cell on `peer` into a bundle the peer fetches (code protocol) if it
   * does not hold it. Resolves with the cell's info once it is ready there.
   */
  async transformRemote (peer: string, request: RemoteTransformRequest, options: Omit<MessageOptions, 'from'> = {}): Promise<CellInfo> {
    this.assertRunning()
    parseAddress(request.address)
    if (!/^[0-9a-f]{64}$/.test(request.bundle)) throw new Error(`invalid bundle id ${JSON.stringify(request.bundle.slice(0, 80))}: expected 64 hex digits (sha256)`)
    if (this.components.peerDown?.(peer) === true) throw judgedDown(peer)
    const deadline = options.deadline ?? Date.now() + this.opts.askTimeout
    const transform: CellTransform = {
      id: messageIdBytes(options.messageId),
      address: request.address,
      bundle: Buffer.from(request.bundle, 'hex'),
      owner: new Uint8Array(request.owner),
      memory: BigInt(request.limits?.memory ?? 0),
      timeout: request.limits?.timeout ?? 0,
      mailbox: request.limits?.mailbox ?? 0,
      state: request.state,
      replies: request.replies,
      version: BigInt(request.version ?? 0),
      replace: request.replace ?? false,
      deadline: BigInt(deadline),
      epoch: request.epoch === undefined ? undefined : BigInt(request.epoch)
    }
    return JSON.parse(await this.request(peer, request.address, transform, { transform }, deadline, options.signal)) as CellInfo
  }

  // ---- sending

  /** A keyed address `app/cell/<key>` as it travels: with its shard, `app/cell#s/<key>` (keys.ts). */
  private withShard (address: string): string {
    if (address.indexOf('/') === address.lastIndexOf('/')) return address
    const { app, cell, replica, key } = parseAddress(address)
    if (key === undefined) return address
    const shards = this.components.directory.shards?.(app, cell)
    if (shards === undefined) {
      if (replica !== undefined) return address
      throw new MessagingError('unknown-address', `unknown cell address ${address}: the directory names no node for ${app}/${cell}`)
    }
    // one shard serves a key: an address naming another one is refused (single activation)
    return shardAddress(address, shards)
  }

  /** 'local' for this node's cells, else the peer id that holds the cell. */
  private resolve (address: string): string {
    const location = this.components.directory.resolve(address)
    if (location !== undefined && location.peer !== this.self) return location.peer
    if (location !== undefined || this.holdsCell(address)) return 'local'
    parseAddress(address)
    throw new MessagingError('unknown-address', `unknown cell address ${address}: the directory names no node for it`)
  }

  private request (peer: string, address: string, message: CellAsk | CellTransform, envelope: CellEnvelope, deadline: number, signal?: AbortSignal): Promise<string> {
    const key = Buffer.from(message.id).toString('hex')
    const existing = this.pending.get(key)
    // a retry while the first try is still waiting: both get its answer
    if (existing !== undefined) return existing.promise
    if (signal?.aborted === true) return Promise.reject(new MessagingError('aborted', `ask to ${address} aborted`))
    this.sendTo(peer, envelope)
    const { promise, resolve, reject } = Promise.withResolvers<string>()
    const delay = Math.max(0, deadline - Date.now())
    const pending: PendingAsk = {
      id: message.id, key, address, envelope: message, peer, rerouted: false, promise, resolve, reject,
      timer: setTimeout(() => {
        this.settle(pending, new MessagingError('timeout', timeoutText(address, delay)))
      }, delay)
    }
    pending.channel = this.links.get(peer)?.channel
    if (signal !== undefined) {
      const onAbort = (): void => { this.settle(pending, new MessagingError('aborted', `ask to ${address} aborted`)) }
      signal.addEventListener('abort', onAbort, { once: true })
      pending.cleanup = () => { signal.removeEventListener('abort', onAbort) }
    }
    this.pending.set(key, pending)
    return promise
  }

  private settle (pending: PendingAsk, outcome: Error | string): void {
    if (this.pending.get(pending.key) !== pending) return
    this.pending.delete(pending.key)
    clearTimeout(pending.timer)
    pending.cleanup?.()
    if (typeof outcome === 'string') pending.resolve(outcome)
    else pending.reject(outcome)
  }

  /** Queue an envelope for `peer`; throws 'backpressure' when its queue is full. */
  private sendTo (peer: string, message: CellEnvelope): void {
    const envelope = encodeEnvelope(message)
    if (envelope.byteLength > this.opts.maxFrameBytes - 1024) {
      throw new MessagingError('too-large', `message of ${envelope.byteLength} bytes is over the ${this.opts.maxFrameBytes - 1024}-byte limit`)
    }
    let link = this.links.get(peer)
    if (link === undefined) {
      link = { peer, waiting: [], waitingBytes: 0, writers: [] }
      this.links.set(peer, link)
    }
    const channel = link.channel
    if (channel?.open === true) {
      if (!channel.hasRoom(envelope.byteLength)) throw this.backpressure(peer)
      channel.send(envelope)
    } else {
      if (link.waitingBytes + envelope.byteLength > this.opts.maxQueuedBytes) throw this.backpressure(peer)
      link.waiting.push(envelope)
      link.waitingBytes += envelope.byteLength
      this.open(link)
    }
    this.counters.messagesOut++
    this.counters.messages.out[kindOf(message)]++
  }

  private backpressure (peer: string): MessagingError {
    this.counters.backpressure++
    return new MessagingError('backpressure', `backpressure: the outbound queue to ${peer} is full (${this.opts.maxQueuedBytes} bytes): retry after whenWritable()`)
  }

  /**
   * `peer` was judged down (the failure detector): what waits for a stream to it fails now
   * as unreachable, and the dial under way is abandoned. A dial to a stalled node hangs
   * until its timeout (its kernel accepts the connection, the process never answers): a new
   * app leader's start of a primary on the stalled old one held its controller round 6.5 s
   * (chaos seed 7: a stall of the primary and leader took 9 s to recover). Asks on an open
   * stream fail when the detector cuts its connections.
   */
  peerJudgedDown (peer: string): void {
    const link = this.links.get(peer)
    if (link?.opening === undefined) return
    link.abandon?.abort(judgedDown(peer))
    link.waiting = []
    link.waitingBytes = 0
    this.failPeer(peer, undefined, judgedDown(peer))
  }

  private open (link: PeerLink): void {
    if (link.opening !== undefined) return
    const abandon = new AbortController()
    link.abandon = abandon
    link.opening = this.components.libp2p.dialProtocol(peerIdFromString(link.peer), this.protocol, { signal: AbortSignal.any([AbortSignal.timeout(10_000), abandon.signal]) })
      .then(stream => {
        if (!this.running) { stream.abort(new Error('messaging stopped')); return }
        const channel = this.channel(stream, link.peer)
        link.channel = channel
        const waiting = link.waiting
        link.waiting = []
        link.waitingBytes = 0
        for (const envelope of waiting) channel.send(envelope)
        for (const pending of this.pending.values()) if (pending.peer === link.peer && pending.channel === undefined) pending.channel = channel
      }, (err: Error) => {
        link.waiting = []
        link.waitingBytes = 0
        this.failPeer(link.peer, undefined, new MessagingError('unreachable', `cannot reach node ${link.peer}: ${err.message}`))
      })
      .finally(() => { link.opening = undefined; link.abandon = undefined })
  }

  /** Reject the asks sent to `peer` (on `channel`, or still waiting for a stream when undefined). */
  private failPeer (peer: string, channel: CellChannel | undefined, error: MessagingError): void {
    for (const pending of [...this.pending.values()]) {
      if (pending.peer === peer && pending.channel === channel) this.settle(pending, error)
    }
    const link = this.links.get(peer)
    if (link !== undefined) for (const writer of link.writers.splice(0)) writer()
  }

  private linkCongested (link: PeerLink): boolean {
    return link.channel?.open === true ? link.channel.congested : link.waitingBytes >= this.opts.maxQueuedBytes / 2
  }

  // ---- streams

  private channel (stream: Stream, peer: string): CellChannel {
    return new CellChannel({
      stream,
      peer,
      signer: this.components.signer,
      verifier: this.verifier,
      maxFrameBytes: this.opts.maxFrameBytes,
      flushBytes: this.opts.flushBytes,
      maxQueuedBytes: this.opts.maxQueuedBytes,
      maxReadBufferBytes: this.opts.maxReadBufferBytes,
      onEnvelope: (envelope, channel) => { this.receive(envelope, channel) },
      onReject: (reason, channel, verifier) => { this.rejected(reason, channel, verifier) },
      onClose: channel => { this.closed(channel) },
      onWritable: channel => {
        const link = this.links.get(channel.peer)
        if (link?.channel === channel) for (const writer of link.writers.splice(0)) writer()
        if (this.inbound.has(channel)) this.flow(channel)
      }
    })
  }

  private accept (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const open = this.inboundByPeer.get(peer) ?? new Set<CellChannel>()
    if (!this.running || open.size >= this.opts.maxStreamsPerPeer) {
      this.counters.streamsRefused++
      stream.abort(new Error('too many cell streams'))
      this.penalize('stream-limit', peer)
      return
    }
    const channel = this.channel(stream, peer)
    open.add(channel)
    this.inboundByPeer.set(peer, open)
    this.inbound.set(channel, { queue: [], head: 0, inflight: 0 })
  }

  private closed (channel: CellChannel): void {
    const state = this.inbound.get(channel)
    if (state !== undefined) {
      clearTimeout(state.retry)
      this.inbound.delete(channel)
      this.inboundByPeer.get(channel.peer)?.delete(channel)
      if (this.inboundByPeer.get(channel.peer)?.size === 0) this.inboundByPeer.delete(channel.peer)
    }
    const link = this.links.get(channel.peer)
    if (link?.channel === channel) {
      link.channel = undefined
      this.failPeer(channel.peer, channel, new MessagingError('unreachable', `connection to node ${channel.peer} lost (the ask may or may not have run: retry with the same messageId)`))
    }
  }

  private rejected (reason: string, channel: CellChannel, countedByVerifier: boolean): void {
    if (this.penalize(reason, channel.peer, countedByVerifier)) channel.close(new Error(`bad frames (${reason})`))
  }

  /** Count a bad frame or refused stream; true if the peer's connection was closed for it. */
  private penalize (reason: string, peer: string, countedByVerifier = false): boolean {
    if (countedByVerifier) this.safeDispatchEvent('frame:rejected', { detail: { peer, reason } })
    else this.countRejected(reason, peer)
    const bad = (this.badFrames.get(peer) ?? 0) + 1
    this.badFrames.set(peer, bad)
    if (reason !== 'oversized' && bad < this.opts.maxBadFrames) return false
    this.badFrames.delete(peer)
    this.counters.peersClosed++
    const why = reason === 'oversized' ? 'sent an oversized frame' : `sent ${bad} bad frames or streams (last: ${reason})`
    this.log.warn(`closing the connection to ${peer}: it ${why}`)
    this.safeDispatchEvent('peer:closed', { detail: { peer, reason: why } })
    this.components.libp2p.hangUp(peerIdFromString(peer)).catch(() => {})
    return true
  }

  private countRejected (reason: string, peer: string): void {
    this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1
    this.safeDispatchEvent('frame:rejected', { detail: { peer, reason } })
  }

  // ---- receiving

  private receive (envelope: CellEnvelope, channel: CellChannel): void {
    this.counters.messagesIn++
    this.counters.messages.in[kindOf(envelope)]++
    if (envelope.reply != null) { this.onReply(envelope.reply, channel); return }
    const state = this.inbound.get(channel)
    if (state === undefined) {
      // requests only travel on streams the requester opened
      this.countRejected('unexpected-request', channel.peer)
      return
    }
    if (envelope.ask != null) state.queue.push({ kind: 'ask', ask: envelope.ask })
    else if (envelope.tell != null) state.queue.push({ kind: 'tell', tell: envelope.tell })
    else if (envelope.transform != null) state.queue.push({ kind: 'transform', transform: envelope.transform })
    else { this.countRejected('empty-message', channel.peer); return }
    this.pump(channel, state)
  }

  private onReply (reply: CellReply, channel: CellChannel): void {
    const pending = this.pending.get(Buffer.from(reply.id).toString('hex'))
    if (pending === undefined || pending.peer !== channel.peer) {
      // late (timed out) or never asked
      this.countRejected('unexpected-reply', channel.peer)
      return
    }
    switch (reply.status) {
      case ReplyStatus.OK: this.settle(pending, reply.text); return
      case ReplyStatus.BUSY: this.settle(pending, new MessagingError('busy', reply.text)); return
      case ReplyStatus.NOT_HERE: this.reroute(pending, reply.hint); return
      default: this.settle(pending, remoteError(reply.text))
    }
  }

  /** "Not here": once, to where the directory (or the receiver's hint) now says the cell is. */
  private reroute (pending: PendingAsk, hint: string): void {
    const fresh = this.components.directory.resolve(pending.address)?.peer
    const next = fresh !== undefined && fresh !== pending.peer ? fresh : hint !== '' && hint !== pending.peer ? hint : undefined
    if (pending.rerouted || next === undefined) {
      this.settle(pending, new MessagingError('not-here', `cell ${pending.address} is not on node ${pending.peer}${pending.rerouted ? ' (after one re-route)' : ' and no other node is known for it'}`))
      return
    }
    pending.rerouted = true
    this.counters.rerouted++
    this.safeDispatchEvent('ask:rerouted', { detail: { address: pending.address, from: pending.peer, to: next } })
    if (next === this.self && 'to' in pending.envelope) {
      const ask = pending.envelope
      this.components.runtime.askJson(ask.to, ask.method, ask.args, { deadline: Number(ask.deadline), from: fromOf(ask.from) })
        .then(text => { this.settle(pending, text) }, (err: Error) => { this.settle(pending, remoteError(replyOfError(err))) })
      return
    }
    pending.peer = next
    pending.channel = this.links.get(next)?.channel
    try {
      this.sendTo(next, 'to' in pending.envelope ? { ask: pending.envelope } : { transform: pending.envelope })
    } catch (err) {
      this.settle(pending, err as Error)
    }
  }

  /** Start queued inbound messages in order while there is room; pause the stream otherwise. */
  private pump (channel: CellChannel, state: InboundState): void {
    while (state.head < state.queue.length && state.inflight < this.opts.maxInflightPerStream) {
      const work = state.queue[state.head]
      if (!this.begin(work, channel, state)) {
        // the cell's mailbox is full: try again when one of ours finishes, or shortly
        state.retry ??= setTimeout(() => { state.retry = undefined; this.pump(channel, state) }, 5)
        break
      }
      state.head++
    }
    if (state.head === state.queue.length) {
      state.queue = []
      state.head = 0
    }
    this.flow(channel)
  }

  private flow (channel: CellChannel): void {
    const state = this.inbound.get(channel)
    if (state === undefined) return
    if (state.head < state.queue.length || state.inflight >= this.opts.maxInflightPerStream || channel.congested) channel.pause()
    else channel.resume()
  }

  /** false: the target cell's mailbox is full (nothing was started) */
  private begin (work: InboundWork, channel: CellChannel, state: InboundState): boolean {
    const runtime = this.components.runtime
    const done = (): void => { state.inflight--; if (this.inbound.has(channel)) this.pump(channel, state) }
    if (work.kind === 'tell') {
      const tell = work.tell
      try { this.withShard(tell.to) } catch { this.counters.tellsDropped++; return true }
      if (!this.holdsCell(tell.to)) { this.forwardTell(tell); return true }
      if (this.mailboxFull(tell.to)) return false
      // a real tell (no reply, no promise): the runtime counts it against the cell's
      // mailbox until the host reports it done, which is what mailboxFull checks
      try {
        runtime.tellJson(tell.to, tell.method, tell.args, fromOf(tell.from))
      } catch {
        this.counters.tellsDropped++
      }
      return true
    }
    const id = work.kind === 'ask' ? work.ask.id : work.transform.id
    const address = work.kind === 'ask' ? work.ask.to : work.transform.address
    const reply = (r: Omit<CellReply, 'id'>): void => {
      this.counters.messagesOut++
      this.counters.messages.out.reply++
      channel.send(encodeEnvelope({ reply: { id, ...r } }))
    }
    if (work.kind === 'ask') {
      try {
        this.withShard(address)
      } catch (err) {
        reply({ status: ReplyStatus.ERROR, text: (err as Error).message, hint: '', epoch: 0n })
        return true
      }
    }
    if (work.kind === 'ask' && !this.holdsCell(address)) {
      const hint = this.components.directory.resolve(address)
      reply({ status: ReplyStatus.NOT_HERE, text: `no cell ${address} on node ${this.self}`, hint: hint?.peer !== this.self ? hint?.peer ?? '' : '', epoch: BigInt(hint?.epoch ?? 0) })
      return true
    }
    if (work.kind === 'ask' && this.mailboxFull(address)) return false
    const answer = (result: DedupeResult): void => { reply({ status: result.ok ? ReplyStatus.OK : ReplyStatus.ERROR, text: result.text, hint: '', epoch: 0n }) }
    const key = `${channel.peer}/${Buffer.from(id).toString('hex')}`
    if (this.dedupe.begin(key, result => { this.counters.dedupeHits++; answer(result) }) === 'wait') return true
    state.inflight++
    const run = work.kind === 'ask'
      ? runtime.askJson(address, work.ask.method, work.ask.args, { deadline: Number(work.ask.deadline), from: fromOf(work.ask.from), messageKey: key })
      : this.transformHere(channel.peer, work.transform)
    run.then(text => ({ result: { ok: true, text }, unsafe: false }), (err: Error) => ({ result: { ok: false, text: replyOfError(err) }, unsafe: err instanceof StateNotSafeError }))
      .then(({ result, unsafe }) => {
        // a full mailbox (lost race) did not run the ask: answer busy and do not record it
        const ran = result.ok || !MAILBOX_FULL.test(result.text)
        // an answer whose state is not safe yet is not recorded either: the runtime's reply
        // window answers a retry once the state is safe (recorded, every retry got this error)
        this.dedupe.finish(key, result, ran && !unsafe)
        if (ran) answer(result)
        else reply({ status: ReplyStatus.BUSY, text: result.text, hint: '', epoch: 0n })
      })
      .finally(done)
    return true
  }

  private forwardTell (tell: CellTell): void {
    const location = this.components.directory.resolve(tell.to)
    if (tell.hops > 0 || location === undefined || location.peer === this.self) {
      this.counters.tellsDropped++
      return
    }
    try {
      this.sendTo(location.peer, { tell: { ...tell, hops: tell.hops + 1 } })
    } catch {
      this.counters.tellsDropped++
    }
  }

  private async transformHere (peer: string, t: CellTransform): Promise<string> {
    const hash = Buffer.from(t.bundle).toString('hex')
    const request: RemoteTransformRequest = {
      address: t.address,
      bundle: hash,
      owner: t.owner,
      limits: t.memory > 0n ? { memory: Number(t.memory), timeout: t.timeout, mailbox: t.mailbox } : undefined,
      state: t.state,
      replies: t.replies,
      version: Number(t.version),
      replace: t.replace,
      epoch: t.epoch === undefined ? undefined : Number(t.epoch)
    }
    const refusal = this.init.refuseTransform?.(peer, request)
    if (refusal !== undefined) throw new Error(`node ${peer} may not transform ${request.address} here: ${refusal}`)
    const bundles = this.components.bundles
    if (bundles === undefined) throw new Error(`node ${this.self} cannot fetch bundles`)
    const signal = AbortSignal.timeout(Math.max(1, Number(t.deadline) - Date.now()))
    const bundle = await bundles.fetch(hash, { signal, peers: [peer] })
    const info = await this.components.runtime.transform(request.address, bundle, {
      owner: request.owner, limits: request.limits, state: request.state, version: request.version, replies: request.replies, replace: request.replace
    })
    return JSON.stringify(info)
  }

  /** Whether this node's runtime serves the cell (transformed or failed; a reverted or blank one is "not here"). */
  private holdsCell (address: string): boolean {
    const runtime = this.components.runtime
    const status = runtime.cell(address)?.status
    if (status !== undefined) return status === 'transformed' || status === 'failed'
    if (address.includes('#')) return false
    // as the runtime resolves app/cell: a serving replica, or else a failed one (which says why)
    const prefix = `${address}#`
    return runtime.cells().some(c => c.address.startsWith(prefix) && (c.status === 'transformed' || c.status === 'failed'))
  }

  private mailboxFull (address: string): boolean {
    const cell = this.components.runtime.cell(address)
    return cell !== undefined && cell.status === 'transformed' && cell.limits !== undefined && cell.inflight >= cell.limits.mailbox
  }

  private assertRunning (): void {
    if (!this.running) throw new MessagingError('stopped', 'cell messaging is not running')
  }
}

/** Random message ids are cut from a pool refilled 256 at a time (one call into the CSPRNG, not one per ask). */
const ID_POOL = Buffer.alloc(16 * 256)
let idPoolAt = ID_POOL.byteLength

function randomMessageId (): Uint8Array<ArrayBuffer> {
  if (idPoolAt === ID_POOL.byteLength) {
    randomFillSync(ID_POOL)
    idPoolAt = 0
  }
  idPoolAt += 16
  return new Uint8Array(ID_POOL.subarray(idPoolAt - 16, idPoolAt))
}

function noMessages (): Record<MessageKind, number> {
  return { ask: 0, tell: 0, reply: 0, transform: 0 }
}

function kindOf (envelope: CellEnvelope): MessageKind {
  return envelope.ask != null ? 'ask' : envelope.tell != null ? 'tell' : envelope.reply != null ? 'reply' : 'transform'
}

function messageIdBytes (id: string | Uint8Array | undefined): Uint8Array<ArrayBuffer> {
  if (id === undefined) return randomMessageId()
  if (typeof id === 'string') {
    if (!/^[0-9a-f]{32}$/i.test(id)) throw new Error(`invalid messageId ${JSON.stringify(id.slice(0, 80))}: expected 32 hex digits`)
    return Buffer.from(id, 'hex')
  }
  if (id.byteLength !== 16) throw new Error(`invalid messageId: expected 16 bytes, got ${id.byteLength}`)
  return new Uint8Array(id)
}

export function createCellMessaging (components: CellMessagingComponents, init: CellMessagingInit): CellMessaging {
  return new CellMessaging(components, init)
}

/** the sending cell's address of a message from the wire ('' when no cell sent it) */
function fromOf (from: string): string | undefined {
  return from === '' ? undefined : from
}
