// The signed envelope of every Stem frame (SPEC §3).
//
// Sending: one `FrameSigner` per private key and process (`createFrameSigner(key)`); it
// numbers frames with an increasing sequence that starts from the clock (µs-scale), so a
// restarted node's numbers stay above those of its previous run without persisting any.
// Batch many messages into one payload: one signature then covers them all.
//
// Receiving: one `FrameVerifier` per receiving component (`createFrameVerifier(opts)`);
// `verify(bytes, { remotePeer })` never throws. It checks, cheapest first: size, decoding,
// presence of a signature and a payload, the sender key, the timestamp window, that the
// signer is the connection's remote peer (unless `forwarded`: an owner-signed object
// relayed by others, or gossip), the replay window, that the bytes are the canonical encoding (no
// unsigned extra fields), the signature, and only then records
// the sequence number — a forged frame cannot poison the window. Rejections are counted
// by reason (`counts()`, a metrics hook) and logged at debug level.
import { Frame } from './proto/frame.js'
import { createSyncSigner, createSyncVerifier, decodePublicKey, encodePublicKey, peerIdOf } from './keys.js'
import type { PrivateKey, PublicKey, VerifyFunction } from './keys.js'
import { ReplayWindow } from './replay-window.js'
import { ProtoWriter, bytesFieldSize, numberFieldSize, varintSize } from './proto-writer.js'
import { createLogger } from '../util/logger.js'

export { Frame }

export const PAYLOAD_KINDS = ['capacity', 'raft', 'cell', 'code', 'leaders'] as const
export type PayloadKind = typeof PAYLOAD_KINDS[number]

export const REJECT_REASONS = [
  'oversized', 'malformed', 'unsigned', 'no-payload', 'wrong-kind', 'bad-sender-key',
  'stale', 'future', 'wrong-sender', 'replayed', 'too-old', 'non-canonical', 'bad-signature'
] as const
export type RejectReason = typeof REJECT_REASONS[number]

/** Ed25519 signature length; the signature is the frame's last field (tag 15). */
const SIGNATURE_LENGTH = 64
const SIGNATURE_TAG = 122 // field 15, wire type 2

export interface UnsignedFrame {
  seq: bigint
  timestamp: bigint
  kind: PayloadKind
  payload: Uint8Array
}

/** protobuf tag of each payload kind's field (10…14, wire type 2) */
const PAYLOAD_TAGS: Record<PayloadKind, number> = { capacity: 82, raft: 90, cell: 98, code: 106, leaders: 114 }

/**
 * The bytes a signature covers: the frame encoded with an empty signature — written by
 * hand (the same bytes as `Frame.encode`, see test/wire) because protons' generic writer
 * costs more than the rest of signing a small frame but the signature itself.
 */
function encodeUnsigned (sender: Uint8Array, frame: UnsignedFrame): Uint8Array {
  const size = bytesFieldSize(sender.byteLength) + numberFieldSize(frame.seq) + numberFieldSize(frame.timestamp) +
    1 + varintSize(frame.payload.byteLength) + frame.payload.byteLength
  const out = new ProtoWriter(size)
  out.raw(10, sender)
  out.number(16, frame.seq)
  out.number(24, frame.timestamp)
  // a oneof member is written even when empty
  out.raw(PAYLOAD_TAGS[frame.kind], frame.payload, true)
  return out.finish()
}

/** Appends the signature field to an encoded unsigned frame (same bytes as re-encoding with it). */
function appendSignature (unsigned: Uint8Array, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(unsigned.length + 2 + signature.length)
  out.set(unsigned, 0)
  out[unsigned.length] = SIGNATURE_TAG
  out[unsigned.length + 1] = signature.length
  out.set(signature, unsigned.length + 2)
  return out
}

/** Stateless signing: encode and sign one frame with explicit seq and timestamp. */
export function signFrame (key: PrivateKey, frame: UnsignedFrame): Uint8Array {
  const unsigned = encodeUnsigned(encodePublicKey(key.publicKey), frame)
  return appendSignature(unsigned, createSyncSigner(key)(unsigned))
}

export interface FrameSigner {
  /** protobuf-encoded public key placed in every frame */
  readonly sender: Uint8Array
  /** peer id of the signer */
  readonly peerId: string
  /** encode and sign a frame carrying `payload` (the encoding of that layer's message) */
  sign: (kind: PayloadKind, payload: Uint8Array) => Uint8Array
}

export interface FrameSignerOptions {
  /** clock in ms; tests inject one */
  now?: () => number
}

export function createFrameSigner (key: PrivateKey, options: FrameSignerOptions = {}): FrameSigner {
  const now = options.now ?? Date.now
  const sender = encodePublicKey(key.publicKey)
  const signBytes = createSyncSigner(key)
  // starts at the clock in µs: above anything this key sent in an earlier run, as long as
  // that run averaged under 1000 frames per ms
  let seq = BigInt(now()) * 1000n
  return {
    sender,
    peerId: peerIdOf(key.publicKey),
    sign (kind, payload) {
      seq++
      const unsigned = encodeUnsigned(sender, { seq, timestamp: BigInt(now()), kind, payload })
      return appendSignature(unsigned, signBytes(unsigned))
    }
  }
}

export interface VerifiedFrame {
  ok: true
  frame: Frame
  /** peer id of the signer */
  sender: string
  senderKey: PublicKey
  kind: PayloadKind
  payload: Uint8Array
}

export interface RejectedFrame {
  ok: false
  reason: RejectReason
}

export type VerifyResult = VerifiedFrame | RejectedFrame

export interface VerifyContext {
  /** peer id of the connection's remote end; the signer must be it unless `forwarded` */
  remotePeer?: string | { toString: () => string }
  /** the payload is an object signed by its owner and relayed by others (gossip, bundles) */
  forwarded?: boolean
  /** the payload kind this receiver accepts */
  expect?: PayloadKind
}

export interface FrameVerifierOptions {
  /** largest frame accepted, in bytes (default 1 MiB) */
  maxBytes?: number
  /** oldest timestamp accepted, ms before now (default 30 s) */
  windowMs?: number
  /** how far in the future a timestamp may be, ms (default 5 s) */
  maxSkewMs?: number
  /** replay window per sender, in sequence numbers (default 1024) */
  replayWindow?: number
  /** senders whose replay windows are kept; the least recently seen are forgotten (default 4096) */
  maxSenders?: number
  /** clock in ms; tests inject one */
  now?: () => number
  /** name for log lines */
  name?: string
}

export interface FrameVerifier {
  verify: (bytes: Uint8Array, context?: VerifyContext) => VerifyResult
  /** rejections so far, by reason */
  counts: () => Record<RejectReason, number>
  /** total rejections so far */
  rejected: () => number
  /** rejections that came from an unexpected exception while checking (a decoder bug: tests and fuzzing expect 0) */
  unexpected: () => number
}

interface SenderState {
  peerId: string
  publicKey: PublicKey
  verify: VerifyFunction
  window: ReplayWindow
}

export function createFrameVerifier (options: FrameVerifierOptions = {}): FrameVerifier {
  const maxBytes = options.maxBytes ?? 1024 * 1024
  const windowMs = BigInt(options.windowMs ?? 30_000)
  const maxSkewMs = BigInt(options.maxSkewMs ?? 5_000)
  const replaySize = options.replayWindow ?? 1024
  const maxSenders = options.maxSenders ?? 4096
  const now = options.now ?? Date.now
  const log = createLogger(options.name ?? 'frames')
  const counts = Object.fromEntries(REJECT_REASONS.map(r => [r, 0])) as Record<RejectReason, number>
  let total = 0
  let unexpected = 0
  // keyed by the encoded sender key (as a latin1 string); Map order = least recently seen first
  const senders = new Map<string, SenderState>()

  const reject = (reason: RejectReason, detail = ''): RejectedFrame => {
    counts[reason]++
    total++
    log.debug(`rejected frame: ${reason}${detail}`)
    return { ok: false, reason }
  }

  const senderState = (encodedKey: Uint8Array): SenderState | undefined => {
    const id = Buffer.from(encodedKey.buffer, encodedKey.byteOffset, encodedKey.byteLength).toString('latin1')
    let state = senders.get(id)
    if (state != null) {
      senders.delete(id)
      senders.set(id, state)
      return state
    }
    let publicKey: PublicKey
    let verify: VerifyFunction
    try {
      publicKey = decodePublicKey(encodedKey)
      verify = createSyncVerifier(publicKey)
    } catch {
      return undefined
    }
    state = { peerId: peerIdOf(publicKey), publicKey, verify, window: new ReplayWindow(replaySize) }
    senders.set(id, state)
    if (senders.size > maxSenders) senders.delete(senders.keys().next().value as string)
    return state
  }

  return {
    counts: () => ({ ...counts }),
    rejected: () => total,
    unexpected: () => unexpected,
    verify (bytes, context = {}) {
      try {
        if (bytes.byteLength > maxBytes) return reject('oversized', ` (${bytes.byteLength} > ${maxBytes} bytes)`)
        let frame: Frame
        try {
          frame = Frame.decode(bytes)
        } catch {
          return reject('malformed')
        }
        if (frame.signature.byteLength !== SIGNATURE_LENGTH) return reject('unsigned')
        const kind = PAYLOAD_KINDS.find(k => frame[k] != null)
        if (kind == null) return reject('no-payload')
        if (context.expect != null && kind !== context.expect) return reject('wrong-kind', ` (${kind})`)
        const t = now()
        const ts = frame.timestamp
        if (ts < BigInt(t) - windowMs) return reject('stale')
        if (ts > BigInt(t) + maxSkewMs) return reject('future')
        // decoding the sender key only after the cheap checks: it costs a key import
        const sender = senderState(frame.sender)
        if (sender == null) return reject('bad-sender-key')
        if (context.forwarded !== true && context.remotePeer != null && context.remotePeer.toString() !== sender.peerId) {
          return reject('wrong-sender', ` (${sender.peerId} on a connection from ${context.remotePeer.toString()})`)
        }
        const replay = sender.window.check(frame.seq)
        if (replay !== 'ok') return reject(replay, ` (seq ${frame.seq} from ${sender.peerId})`)
        const payload = frame[kind] as Uint8Array
        const unsigned = encodeUnsigned(frame.sender, { seq: frame.seq, timestamp: frame.timestamp, kind, payload })
        // the received bytes must be exactly the canonical encoding, every byte of it: extra
        // (unknown) fields, duplicated ones, or another tag or length in front of the
        // signature (the decoder reads field 15 whatever its wire type) ride along unsigned
        const end = unsigned.byteLength
        if (bytes.byteLength !== end + 2 + SIGNATURE_LENGTH || bytes[end] !== SIGNATURE_TAG || bytes[end + 1] !== SIGNATURE_LENGTH ||
          Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, end), Buffer.from(unsigned.buffer, unsigned.byteOffset, end)) !== 0) {
          return reject('non-canonical')
        }
        if (!sender.verify(unsigned, frame.signature)) return reject('bad-signature', ` (from ${sender.peerId})`)
        sender.window.accept(frame.seq)
        return { ok: true, frame, sender: sender.peerId, senderKey: sender.publicKey, kind, payload }
      } catch (err) {
        // a decoder bug must not reach the caller's loop
        unexpected++
        log.debug(`frame verification failed unexpectedly: ${(err as Error).message}`)
        return reject('malformed')
      }
    }
  }
}
