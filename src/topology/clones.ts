// Warm clones (SPEC §4): protocol /stem/<mesh>/clone/1.
//
// Clone side: on the leader's `hold`, the node fetches the instance's bundle and keeps a
// clone record; each `state` from the instance's primary replaces the held state if its
// version is newer; on `promote` the clone becomes the primary: the cell is transformed
// here from the held state (warm: the bundle is already here).
//
// Primary side: `gate` is the cell runtime's replyGate, so the answer to a message
// leaves only after the state it produced is held by at least one of the instance's
// clones (as the app table lists them). Without clones, answers leave at once.
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CellRuntime } from '../cells/runtime.js'
import type { CellLimits } from '../cells/limits.js'
import type { BundleExchange } from '../messaging/code-exchange.js'
import { readOne, writeFrame } from '../messaging/framing.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import { CloneAnswer, CloneRequest } from '../wire/proto/clone.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import type { AppTable } from './app-table.js'

export interface CloneServiceComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  runtime: CellRuntime
  bundles: BundleExchange
  signer: FrameSigner
  table: AppTable
  logger?: Logger
}

export interface CloneServiceInit {
  mesh: string
  /** ms for one clone request (default 5 s) */
  timeout?: number
  /** largest state sent or accepted, bytes (default 8 MiB) */
  maxFrameBytes?: number
}

interface HeldClone {
  bundle: string
  owner: Uint8Array
  limits?: CellLimits
  state?: string
  version: number
}

const INSTANCE = /^[a-z0-9][a-z0-9-]{0,62}\/[A-Za-z0-9_-]+#\d+$/i

export class CloneService {
  readonly protocol: string
  private readonly log: Logger
  private readonly verifier
  private readonly held = new Map<string, HeldClone>()
  /** primary side: the newest state of each local instance, and the version its clones hold */
  private readonly latest = new Map<string, { state: string, version: number }>()
  private readonly replicated = new Map<string, number>()
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly maxFrameBytes: number
  private running = false

  constructor (private readonly components: CloneServiceComponents, private readonly init: CloneServiceInit) {
    this.protocol = `/stem/${init.mesh}/clone/1`
    this.log = components.logger ?? createLogger('clones')
    this.maxFrameBytes = init.maxFrameBytes ?? 8 * 1024 * 1024
    this.verifier = createFrameVerifier({ maxBytes: this.maxFrameBytes + 4096, name: 'clone' })
    components.runtime.addEventListener('cell:snapshot', evt => {
      this.latest.set(evt.detail.address, { state: evt.detail.state, version: evt.detail.version })
    })
    components.runtime.addEventListener('cell:reverted', evt => {
      this.latest.delete(evt.detail.address)
      this.replicated.delete(evt.detail.address)
    })
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { this.serve(stream, connection) }, { maxInboundStreams: 64 })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.components.libp2p.unhandle(this.protocol)
  }

  // ---- the leader's requests

  async hold (peer: string, address: string, bundle: string, owner: Uint8Array, limits: CellLimits): Promise<void> {
    await this.request(peer, { hold: { address, bundle: Buffer.from(bundle, 'hex'), owner: new Uint8Array(owner), memory: BigInt(limits.memory), timeout: limits.timeout, mailbox: limits.mailbox } })
  }

  async promote (peer: string, address: string): Promise<void> {
    await this.request(peer, { promote: { address } })
  }

  /** The app is gone: its clones here are dropped, and its cell host if it ran only for them. */
  forgetApp (app: string): void {
    for (const address of [...this.held.keys()]) if (address.startsWith(`${app}/`)) this.held.delete(address)
    this.components.runtime.release(app)
  }

  /** whether this node holds a clone of `address` */
  holds (address: string): boolean {
    return this.held.has(address)
  }

  // ---- the durability gate

  /** For CellRuntimeInit.replyGate: resolves once a clone of `address` holds its state `version` (at once without clones). */
  async gate (address: string, _version: number): Promise<void> {
    // the runtime hands the state to 'cell:snapshot' listeners before it calls the gate,
    // so the newest state noted here is at least `_version`
    await this.replicateInstance(address)
  }

  private async replicateInstance (address: string): Promise<void> {
    for (;;) {
      const latest = this.latest.get(address)
      const clones = this.clonesOf(address)
      if (latest === undefined || clones.length === 0 || (this.replicated.get(address) ?? -1) >= latest.version) return
      const running = this.inflight.get(address)
      if (running !== undefined) { await running.catch(() => {}); continue }
      const push = this.push(address, clones, latest.state, latest.version)
      this.inflight.set(address, push)
      try {
        await push
      } finally {
        this.inflight.delete(address)
      }
    }
  }

  private async push (address: string, clones: string[], state: string, version: number): Promise<void> {
    const failures: string[] = []
    const { promise, resolve, reject } = Promise.withResolvers<void>()
    let pending = clones.length
    for (const peer of clones) {
      this.request(peer, { state: { address, state, version: BigInt(version) } }).then(() => {
        if (version > (this.replicated.get(address) ?? -1)) this.replicated.set(address, version)
        resolve()
      }, (err: Error) => {
        failures.push(`${peer}: ${err.message}`)
        if (--pending === 0) reject(new Error(`no clone of ${address} took its state (${failures.join('; ')})`))
      })
    }
    await promise
  }

  private clonesOf (address: string): string[] {
    const app = address.slice(0, address.indexOf('/'))
    return this.components.table.get(app)?.instances.find(i => i.address === address)?.clones ?? []
  }

  // ---- the wire

  private async request (peer: string, request: CloneRequest): Promise<CloneAnswer> {
    const self = this.components.signer.peerId
    if (peer === self) return { ok: true, error: '', version: BigInt(await this.handle(self, request)) }
    const signal = AbortSignal.timeout(this.init.timeout ?? 5000)
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), this.protocol, { signal })
    try {
      const answer = readOne(stream, 4096, signal)
      writeFrame(stream, this.components.signer.sign('cell', CloneRequest.encode(request)))
      const verified = this.verifier.verify(await answer, { remotePeer: peer, expect: 'cell' })
      if (!verified.ok) throw new Error(`rejected answer: ${verified.reason}`)
      const decoded = CloneAnswer.decode(verified.payload)
      if (!decoded.ok) throw new Error(decoded.error.slice(0, 300))
      return decoded
    } finally {
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('clone request done')) })
    }
  }

  private serve (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(this.init.timeout ?? 5000)
    const answer = (a: CloneAnswer): void => { writeFrame(stream, this.components.signer.sign('cell', CloneAnswer.encode(a))) }
    readOne(stream, this.maxFrameBytes + 4096, signal).then(async bytes => {
      const verified = this.verifier.verify(bytes, { remotePeer: peer, expect: 'cell' })
      if (!verified.ok) { stream.abort(new Error(`bad clone request: ${verified.reason}`)); return }
      let request: CloneRequest
      try {
        request = CloneRequest.decode(verified.payload)
      } catch {
        stream.abort(new Error('bad clone request: malformed'))
        return
      }
      try {
        const version = await this.handle(peer, request)
        answer({ ok: true, error: '', version: BigInt(version) })
      } catch (err) {
        answer({ ok: false, error: (err as Error).message.split('\n')[0].slice(0, 300), version: 0n })
      }
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('clone answer sent')) })
    }, () => { stream.abort(new Error('bad clone request: truncated or oversized')) })
  }

  private async handle (peer: string, request: CloneRequest): Promise<number> {
    if (request.hold != null) {
      const h = request.hold
      if (!INSTANCE.test(h.address) || h.bundle.byteLength !== 32) throw new Error('invalid hold request')
      this.checkMember(peer, h.address)
      const bundle = Buffer.from(h.bundle).toString('hex')
      await this.components.bundles.fetch(bundle, { peers: [peer], signal: AbortSignal.timeout(this.init.timeout ?? 5000) })
      const previous = this.held.get(h.address)
      const limits = h.memory > 0n ? { memory: Number(h.memory), timeout: h.timeout, mailbox: h.mailbox } : undefined
      this.held.set(h.address, { bundle, owner: h.owner, limits, state: previous?.state, version: previous?.version ?? -1 })
      // warm: the app's cell host runs before the promotion needs it
      this.components.runtime.prepare(h.address.slice(0, h.address.indexOf('/')))
      return previous?.version ?? 0
    }
    if (request.state != null) {
      const s = request.state
      const clone = this.held.get(s.address)
      if (clone === undefined) throw new Error(`no clone of ${s.address} here`)
      const primary = this.components.table.resolve(s.address)?.peer
      if (primary !== undefined && primary !== peer) throw new Error(`${peer} is not the primary of ${s.address}`)
      if (Number(s.version) > clone.version) { clone.state = s.state; clone.version = Number(s.version) }
      return clone.version
    }
    if (request.promote != null) {
      const address = request.promote.address
      const clone = this.held.get(address)
      if (clone === undefined) throw new Error(`no clone of ${address} here`)
      this.checkMember(peer, address)
      const bundle = await this.components.bundles.fetch(clone.bundle, { peers: [peer] })
      await this.components.runtime.transform(address, bundle, { owner: clone.owner, limits: clone.limits, state: clone.state, version: clone.version < 0 ? undefined : clone.version, replace: true })
      this.held.delete(address)
      this.log.info(`promoted the clone of ${address} (${clone.version < 0 ? 'no state received yet' : `state version ${clone.version}`})`)
      return clone.version
    }
    throw new Error('empty clone request')
  }

  /** Holds and promotions come from the app's leader; a member of its group is accepted too, as a new leader may not be announced yet. */
  private checkMember (peer: string, address: string): void {
    const app = address.slice(0, address.indexOf('/'))
    const known = this.components.table.get(app)
    if (known !== undefined && known.leader !== peer && !known.members.includes(peer)) throw new Error(`${peer} is not in the group of app ${app}`)
  }
}

export function createCloneService (components: CloneServiceComponents, init: CloneServiceInit): CloneService {
  return new CloneService(components, init)
}
