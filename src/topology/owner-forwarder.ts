// Owner requests through any node (SPEC §6: publish, scale, revert work from any node):
// a node outside an app's Raft group forwards the owner-signed request to a member on
// /stem/<mesh>/owner/1 — the leader known from the app's announcement first, then the
// other members. The request is self-authenticating (signed by the owner key, with the
// owner's clock against replay), so the member verifies it exactly as if it came from its
// own control API. One request and one answer per stream, each a signed Frame (payload
// `leaders`, the topology layer's). A publish forwards no bundles: the forwarding node
// has verified them and holds them in its bundle store, and the member fetches them from
// it by hash (BundleExchange).
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { readOne, writeFrame } from '../messaging/framing.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import { createLogger } from '../util/logger.js'
import type { Logger } from '../util/logger.js'
import { decodeOwnerAnswer, decodeOwnerForward, encodeOwnerAnswer, encodeOwnerForward, MAX_ANSWER_BYTES, MAX_FORWARD_BYTES } from './owner-forward-codec.js'
import type { OwnerAnswer } from './owner-forward-codec.js'
import type { SignedOwnerRequest } from './owner-request.js'

/** thrown by a handler when this node does not govern the request's app: the forwarder tries another member */
export class NotMemberError extends Error {}

export interface OwnerForwarderComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  signer: FrameSigner
  /** runs a forwarded request as this node's own API would; `from` is the forwarding peer */
  handle: (signed: SignedOwnerRequest, from: string, signal: AbortSignal) => Promise<{ changed: boolean }>
  logger?: Logger
}

export interface OwnerForwarderInit {
  mesh: string
  /** ms a member may take to carry out a forwarded request (default 45 s) */
  timeout?: number
  /** ms to open a stream to one member (default 5 s) */
  dialTimeout?: number
}

/** frame overhead around the payload: sender key, numbers, signature */
const FRAME_OVERHEAD = 256

export class OwnerForwarder {
  readonly protocol: string
  private readonly log: Logger
  private readonly verifier = createFrameVerifier({ maxBytes: MAX_FORWARD_BYTES + FRAME_OVERHEAD, name: 'owner' })
  private running = false

  constructor (private readonly components: OwnerForwarderComponents, private readonly init: OwnerForwarderInit) {
    this.protocol = `/stem/${init.mesh}/owner/1`
    this.log = components.logger ?? createLogger('owner')
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.components.libp2p.handle(this.protocol, (stream, connection) => { this.serve(stream, connection) }, { maxInboundStreams: 16 })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.components.libp2p.unhandle(this.protocol)
  }

  /** counts of rejected frames by reason (metrics, tests) */
  rejected (): number {
    return this.verifier.rejected()
  }

  /**
   * Sends the request to the first of `members` that governs the app. A member that
   * cannot be reached or is no longer in the group is skipped; a member's refusal (bad
   * signature, other owner, replay…) is the answer. Aborted by `signal`, else after the timeout.
   */
  async forward (app: string, members: string[], signed: SignedOwnerRequest, signal?: AbortSignal): Promise<{ changed: boolean }> {
    const deadline = AbortSignal.any([AbortSignal.timeout((this.init.timeout ?? 45_000) + 5000), ...(signal === undefined ? [] : [signal])])
    const skipped: string[] = []
    for (const peer of members) {
      if (peer === this.components.signer.peerId) continue
      let answer: OwnerAnswer
      try {
        answer = await this.ask(peer, signed, deadline)
      } catch (err) {
        if (deadline.aborted) throw new Error(`app ${app}: no answer from member ${peer} in time`)
        skipped.push(`${peer}: ${(err as Error).message.split('\n')[0]}`)
        continue
      }
      if (answer.notMember) { skipped.push(`${peer}: not in the group`); continue }
      if (!answer.ok) throw new Error(answer.error)
      return { changed: answer.changed }
    }
    throw new Error(`app ${app}: no member of its group took the request (${skipped.join('; ') || 'no members known'})`)
  }

  private async ask (peer: string, signed: SignedOwnerRequest, signal: AbortSignal): Promise<OwnerAnswer> {
    const dial = AbortSignal.any([signal, AbortSignal.timeout(this.init.dialTimeout ?? 5000)])
    const stream = await this.components.libp2p.dialProtocol(peerIdFromString(peer), this.protocol, { signal: dial })
    try {
      const answer = readOne(stream, MAX_ANSWER_BYTES + FRAME_OVERHEAD, signal)
      writeFrame(stream, this.components.signer.sign('leaders', encodeOwnerForward(signed)))
      const verified = this.verifier.verify(await answer, { remotePeer: peer, expect: 'leaders' })
      if (!verified.ok) throw new Error(`rejected answer: ${verified.reason}`)
      return decodeOwnerAnswer(verified.payload)
    } finally {
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('owner request done')) })
    }
  }

  private serve (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(this.init.timeout ?? 45_000)
    const answer = async (a: OwnerAnswer): Promise<void> => {
      writeFrame(stream, this.components.signer.sign('leaders', encodeOwnerAnswer(a)))
      await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('owner answer sent')) })
    }
    readOne(stream, MAX_FORWARD_BYTES + FRAME_OVERHEAD, signal).then(async bytes => {
      const verified = this.verifier.verify(bytes, { remotePeer: peer, expect: 'leaders' })
      if (!verified.ok) { stream.abort(new Error(`bad owner request frame: ${verified.reason}`)); return }
      try {
        const signed = decodeOwnerForward(verified.payload)
        const result = await this.components.handle(signed, peer, signal)
        await answer({ ok: true, error: '', changed: result.changed, notMember: false })
      } catch (err) {
        const error = (err as Error).message.split('\n')[0]
        this.log.info(`refused an owner request forwarded by ${peer}: ${error}`)
        await answer({ ok: false, error, changed: false, notMember: err instanceof NotMemberError })
      }
    }, (err: Error) => { stream.abort(new Error(`bad owner request frame: ${err.message}`)) })
      // the asker went away before its answer (a closed stream throws on write): never an unhandled rejection
      .catch((err: Error) => { stream.abort(err) })
  }
}

export function createOwnerForwarder (components: OwnerForwarderComponents, init: OwnerForwarderInit): OwnerForwarder {
  return new OwnerForwarder(components, init)
}
