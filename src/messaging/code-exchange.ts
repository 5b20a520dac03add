// The code protocol /stem/<mesh>/code/1: any node fetches a bundle by content id from any
// peer that holds it. Holders announce themselves as DHT provider records for a CID made
// from the sha256 content id, so a node finds copies beyond the publisher.
// One request and one response per stream, each a signed Frame (payload `code`).
import { TypedEventEmitter } from '@libp2p/interface'
import type { Libp2p, PeerId, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { CodeMessage } from '../wire/proto/code.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner, FrameVerifier } from '../wire/frame.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import { MAX_BUNDLE_BYTES, encodeBundle } from '../cells/bundle.js'
import type { CellBundle } from '../cells/bundle.js'
import type { BundleStore } from './bundle-store.js'
import { readOne, writeFrame } from './framing.js'

const RAW_CODEC = 0x55
const SHA2_256 = 0x12
const HASH = /^[0-9a-f]{64}$/
/** a request frame is a key, a hash and a signature */
const MAX_REQUEST_BYTES = 1024

/** The CID under which holders of a bundle are announced (raw codec, sha2-256 multihash). */
export function bundleCid (hash: string): CID {
  if (!HASH.test(hash)) throw new Error(`invalid bundle id ${JSON.stringify(hash.slice(0, 80))}: expected 64 hex digits (sha256)`)
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, Buffer.from(hash, 'hex')))
}

export interface BundleExchangeComponents {
  libp2p: Libp2p
  store: BundleStore
  signer: FrameSigner
  logger?: Logger
}

export interface BundleExchangeInit {
  mesh: string
  /** ms for one peer to answer a fetch (default 10 s) */
  peerTimeout?: number
  /** providers tried per fetch (default 8) */
  maxProviders?: number
  /** inbound code streams per connection (default 8) */
  maxInboundStreams?: number
}

export interface BundleExchangeEvents {
  'bundle:fetched': CustomEvent<{ hash: string, from: string }>
  'bundle:served': CustomEvent<{ hash: string, to: string }>
  'request:rejected': CustomEvent<{ peer: string, reason: string }>
}

export interface BundleExchangeCounters {
  served: number
  fetched: number
  fetchFailures: number
  rejected: Record<string, number>
}

export interface FetchOptions {
  signal?: AbortSignal
  /** peers to try before the DHT's providers (e.g. the node that sent the transform) */
  peers?: string[]
}

export class BundleExchange extends TypedEventEmitter<BundleExchangeEvents> {
  readonly protocol: string
  private readonly verifier: FrameVerifier
  private readonly log: Logger
  private readonly inflight = new Map<string, Promise<CellBundle>>()
  private readonly counters: BundleExchangeCounters = { served: 0, fetched: 0, fetchFailures: 0, rejected: {} }
  private running = false

  constructor (private readonly components: BundleExchangeComponents, private readonly init: BundleExchangeInit) {
    super()
    this.protocol = `/stem/${init.mesh}/code/1`
    this.log = components.logger ?? createLogger('code')
    this.verifier = createFrameVerifier({ maxBytes: MAX_BUNDLE_BYTES + 4096, name: 'code' })
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { this.serve(stream, connection) }, {
      maxInboundStreams: this.init.maxInboundStreams ?? 8
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.components.libp2p.unhandle(this.protocol)
  }

  counts (): BundleExchangeCounters {
    return { ...this.counters, rejected: { ...this.counters.rejected, ...nonZero(this.verifier.counts()) } }
  }

  /** Store a bundle (verified) and announce this node as a holder. */
  async publish (bundle: CellBundle | Uint8Array, options: { signal?: AbortSignal } = {}): Promise<CellBundle> {
    const stored = await this.components.store.put(bundle instanceof Uint8Array ? bundle : encodeBundle(bundle))
    await this.announce(stored.hash, options)
    return stored
  }

  /** Announce a held bundle as a DHT provider record. A mesh of one node has no one to tell: not an error. */
  async announce (hash: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    // with no one connected, the DHT's provide would wait out its whole deadline
    if (this.components.libp2p.getConnections().length === 0) return
    try {
      await this.components.libp2p.contentRouting.provide(bundleCid(hash), { signal: options.signal })
    } catch (err) {
      this.log.debug(`cannot announce bundle ${hash}: ${(err as Error).message}`)
    }
  }

  /** The bundle from the local store, else from the given peers, else from its DHT providers; stored and announced. */
  async fetch (hash: string, options: FetchOptions = {}): Promise<CellBundle> {
    bundleCid(hash)
    const local = await this.components.store.get(hash)
    if (local !== undefined) return local
    let pending = this.inflight.get(hash)
    if (pending === undefined) {
      pending = this.fetchRemote(hash, options).finally(() => { this.inflight.delete(hash) })
      this.inflight.set(hash, pending)
    }
    return pending
  }

  private async fetchRemote (hash: string, options: FetchOptions): Promise<CellBundle> {
    const self = this.components.libp2p.peerId.toString()
    const tried = new Set<string>([self])
    const failures: string[] = []
    const attempt = async (peer: PeerId): Promise<CellBundle | undefined> => {
      const id = peer.toString()
      if (tried.has(id) || tried.size > (this.init.maxProviders ?? 8)) return undefined
      tried.add(id)
      try {
        const bundle = await this.fetchFrom(peer, hash, options.signal)
        this.counters.fetched++
        this.safeDispatchEvent('bundle:fetched', { detail: { hash, from: id } })
        void this.announce(hash)
        return bundle
      } catch (err) {
        failures.push(`${id}: ${(err as Error).message}`)
        return undefined
      }
    }
    for (const peer of options.peers ?? []) {
      const bundle = await attempt(peerIdFromString(peer))
      if (bundle !== undefined) return bundle
    }
    try {
      for await (const provider of this.components.libp2p.contentRouting.findProviders(bundleCid(hash), { signal: options.signal })) {
        const bundle = await attempt(provider.id)
        if (bundle !== undefined) return bundle
      }
    } catch (err) {
      failures.push(`provider lookup: ${(err as Error).message}`)
    }
    this.counters.fetchFailures++
    options.signal?.throwIfAborted()
    throw new Error(`cannot fetch bundle ${hash}: ${failures.length > 0 ? failures.join('; ') : 'no peer holds it'}`)
  }

  private async fetchFrom (peer: PeerId, hash: string, outer?: AbortSignal): Promise<CellBundle> {
    const signal = anySignal(outer, this.init.peerTimeout ?? 10_000)
    const stream = await this.components.libp2p.dialProtocol(peer, this.protocol, { signal })
    try {
      const answer = readOne(stream, MAX_BUNDLE_BYTES + 4096, signal)
      writeFrame(stream, this.components.signer.sign('code', CodeMessage.encode({ fetch: { hash: Buffer.from(hash, 'hex') } })))
      const bytes = await answer
      const verified = this.verifier.verify(bytes, { remotePeer: peer, expect: 'code' })
      if (!verified.ok) throw new Error(`rejected answer: ${verified.reason}`)
      const message = CodeMessage.decode(verified.payload)
      if (message.error != null) throw new Error(message.error.message.slice(0, 200))
      if (message.bundle == null) throw new Error('answer carries no bundle')
      // verified (structure, hash, owner signature) before it is written
      return await this.components.store.put(message.bundle.bundle, hash)
    } finally {
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('fetch done')) })
    }
  }

  private serve (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const reject = (reason: string): void => {
      this.counters.rejected[reason] = (this.counters.rejected[reason] ?? 0) + 1
      this.log.debug(`rejected code request from ${peer}: ${reason}`)
      this.safeDispatchEvent('request:rejected', { detail: { peer, reason } })
      stream.abort(new Error(`bad code request: ${reason}`))
    }
    const signal = AbortSignal.timeout(this.init.peerTimeout ?? 10_000)
    readOne(stream, MAX_REQUEST_BYTES, signal).then(async bytes => {
      const verified = this.verifier.verify(bytes, { remotePeer: peer, expect: 'code' })
      if (!verified.ok) { reject(verified.reason); return }
      let message: CodeMessage
      try {
        message = CodeMessage.decode(verified.payload)
      } catch {
        reject('malformed-request'); return
      }
      if (message.fetch?.hash.byteLength !== 32) { reject('malformed-request'); return }
      const hash = Buffer.from(message.fetch.hash).toString('hex')
      const encoded = await this.components.store.getEncoded(hash)
      const answer = encoded !== undefined
        ? CodeMessage.encode({ bundle: { hash: message.fetch.hash, bundle: encoded as Uint8Array<ArrayBuffer> } })
        : CodeMessage.encode({ error: { hash: message.fetch.hash, message: `bundle ${hash} is not held by ${this.components.libp2p.peerId.toString()}` } })
      if (!writeFrame(stream, this.components.signer.sign('code', answer))) await stream.onDrain({ signal })
      await stream.close({ signal })
      if (encoded !== undefined) {
        this.counters.served++
        this.safeDispatchEvent('bundle:served', { detail: { hash, to: peer } })
      }
    }, (err: Error) => { reject(err.message.startsWith('frame of') ? 'oversized' : 'truncated') })
      .catch(err => { stream.abort(err as Error) })
  }
}

function anySignal (signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal !== undefined ? AbortSignal.any([signal, timeout]) : timeout
}

function nonZero (counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0))
}

export function createBundleExchange (components: BundleExchangeComponents, init: BundleExchangeInit): BundleExchange {
  return new BundleExchange(components, init)
}
