// The asking side of the clone protocol (clones.ts): a stream to a peer carries many
// requests, each a signed frame with its own id, and their answers, matched by that id.
// A node keeps one such stream per peer for its primaries' pushes of their states, so each
// costs a frame each way, not a stream's dial, negotiation and close (bench durable-ask,
// durability memory: p50 2.3-2.9 → 1.0-1.4 ms). A stream that has SESSION_REQUESTS
// requests under way is not given more: those get a stream each. A stream on which a
// request went unanswered is retired: it may be stuck on a connection that died without a
// word, so the next requests go on a new one, and it closes once its requests settle.
//
// Strict: an answer that fails verification (garbage, forged, replayed, a wrong kind),
// is oversized, truncated or malformed, or answers a request never asked on this stream
// ends the stream, and every request waiting on it fails with that one-line reason.
import type { Stream } from '@libp2p/interface'
import { readFrames, writeFrame } from '../messaging/framing.js'
import { CloneAnswer, CloneRequest } from '../wire/proto/clone.js'
import type { FrameSigner, FrameVerifier } from '../wire/frame.js'

/** a request as its sender makes it: the stream numbers it */
export type CloneAsk = Omit<CloneRequest, 'id'>

/** requests one stream carries at once: the answering side refuses a stream with more under way */
export const SESSION_REQUESTS = 64

interface Waiting {
  resolve: (answer: CloneAnswer) => void
  reject: (err: Error) => void
}

export interface CloneSessionInit {
  stream: Stream
  /** the peer at the other end: every answer must be signed by it */
  peer: string
  signer: FrameSigner
  verifier: FrameVerifier
  /** largest answer frame accepted, bytes */
  maxFrameBytes: number
  /** no new request goes on this stream any more (it ended, or a request on it went unanswered); it closes once its requests settle */
  onRetire?: (session: CloneSession) => void
  /** the stream ended (for whatever reason) */
  onClose?: (session: CloneSession) => void
}

export class CloneSession {
  private readonly waiting = new Map<bigint, Waiting>()
  private nextId = 1n
  private ended = false
  private retired = false

  constructor (private readonly init: CloneSessionInit) {
    readFrames(init.stream, init.maxFrameBytes, {
      onFrame: frame => { this.receive(frame) },
      onOversized: length => { this.end(`rejected answer: frame of ${length} bytes over the ${init.maxFrameBytes}-byte limit`) },
      onClose: unread => { this.end(unread > 0 ? `rejected answer: truncated (${unread} bytes of an incomplete frame)` : 'the clone stream closed') }
    })
  }

  /** whether a new request may go on this stream */
  get usable (): boolean {
    return !this.retired && this.waiting.size < SESSION_REQUESTS
  }

  /** Sends `request` and resolves with its answer; rejects on `signal`, an answer with ok false, or the stream's end. */
  async ask (request: CloneAsk, signal: AbortSignal): Promise<CloneAnswer> {
    if (this.ended) throw new Error('the clone stream closed')
    signal.throwIfAborted()
    const id = this.nextId++
    const { promise, resolve, reject } = Promise.withResolvers<CloneAnswer>()
    const onAbort = (): void => {
      // a late answer to it is ignored (receive: an id asked before, no longer waited for)
      this.waiting.delete(id)
      reject(new Error('timed out'))
      // a stream whose answer did not come may be stuck (its connection dead without a
      // word): the next requests go on a new one, this one closes once the others settle
      this.retire()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    const settle = (): void => {
      signal.removeEventListener('abort', onAbort)
      this.waiting.delete(id)
      if (this.retired && this.waiting.size === 0) this.close()
    }
    this.waiting.set(id, {
      resolve: answer => { settle(); resolve(answer) },
      reject: err => { settle(); reject(err) }
    })
    try {
      writeFrame(this.init.stream, this.init.signer.sign('cell', CloneRequest.encode({ ...request, id })))
    } catch (err) {
      this.end(`cannot write to the clone stream: ${(err as Error).message.split('\n')[0]}`)
    }
    const answer = await promise
    if (!answer.ok) throw new Error(answer.error.slice(0, 300))
    return answer
  }

  /** Ends the stream gracefully once nothing waits on it (or now, aborting what does, with `why`). */
  close (why = 'the clone stream closed'): void {
    if (this.ended) return
    if (this.waiting.size > 0) { this.end(why); return }
    this.takesNoMore()
    this.ended = true
    this.init.onClose?.(this)
    this.init.stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { this.init.stream.abort(new Error(why)) })
  }

  /** takes no new requests; closes once none waits */
  private retire (): void {
    this.takesNoMore()
    if (this.waiting.size === 0) this.close()
  }

  private takesNoMore (): void {
    if (this.retired) return
    this.retired = true
    this.init.onRetire?.(this)
  }

  private receive (frame: Uint8Array): void {
    const verified = this.init.verifier.verify(frame, { remotePeer: this.init.peer, expect: 'cell' })
    if (!verified.ok) { this.end(`rejected answer: ${verified.reason}`); return }
    let answer: CloneAnswer
    try {
      answer = CloneAnswer.decode(verified.payload)
    } catch {
      this.end('rejected answer: malformed')
      return
    }
    const waiting = this.waiting.get(answer.id)
    if (waiting !== undefined) waiting.resolve(answer)
    // an id never asked on this stream: not a late answer to a request given up on
    else if (answer.id === 0n || answer.id >= this.nextId) this.end(`rejected answer: unknown request id ${answer.id}`)
  }

  /** The stream is done: every request still waiting fails with `why`. */
  private end (why: string): void {
    if (this.ended) return
    this.takesNoMore()
    this.ended = true
    this.init.onClose?.(this)
    if (this.init.stream.status === 'open') this.init.stream.abort(new Error(why))
    const err = new Error(why)
    for (const w of [...this.waiting.values()]) w.reject(err)
  }
}
