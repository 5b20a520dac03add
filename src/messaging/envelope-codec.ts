// Hand-written encoders for the hot path of cell messaging: asks, tells and replies and
// the batch that carries them. They produce exactly the bytes protons does (fields in
// number order, proto3 defaults left out; tests compare both), without protons' generic
// writer, which allocates a fork per nested message and costs several µs per small
// message — the largest cost of a burst of tells. Transforms (rare) use protons.
import { CellEnvelope, ReplyStatus } from '../wire/proto/cell.js'
import type { CellAsk, CellReply, CellTell } from '../wire/proto/cell.js'
import { ProtoWriter, bytesFieldSize, numberFieldSize, varintSize } from '../wire/proto-writer.js'

const STATUS_NUMBER: Record<ReplyStatus, number> = { [ReplyStatus.OK]: 0, [ReplyStatus.ERROR]: 1, [ReplyStatus.NOT_HERE]: 2, [ReplyStatus.BUSY]: 3 }

/** The envelope's bytes: field `tag` of CellEnvelope holding a `size`-byte message written by `write`. */
function envelope (tag: number, size: number, write: (out: ProtoWriter) => void): Uint8Array {
  const out = new ProtoWriter(1 + varintSize(size) + size)
  out.byte(tag)
  out.varint(size)
  write(out)
  return out.finish()
}

function encodeAsk (ask: CellAsk): Uint8Array {
  const to = Buffer.byteLength(ask.to)
  const method = Buffer.byteLength(ask.method)
  const args = Buffer.byteLength(ask.args)
  const from = Buffer.byteLength(ask.from)
  const size = bytesFieldSize(ask.id.byteLength) + bytesFieldSize(to) + bytesFieldSize(method) + bytesFieldSize(args) + numberFieldSize(ask.deadline) + bytesFieldSize(from)
  return envelope(10, size, out => {
    out.raw(10, ask.id)
    out.text(18, ask.to, to)
    out.text(26, ask.method, method)
    out.text(34, ask.args, args)
    out.number(40, ask.deadline)
    out.text(50, ask.from, from)
  })
}

function encodeTell (tell: CellTell): Uint8Array {
  const to = Buffer.byteLength(tell.to)
  const method = Buffer.byteLength(tell.method)
  const args = Buffer.byteLength(tell.args)
  const from = Buffer.byteLength(tell.from)
  const size = bytesFieldSize(to) + bytesFieldSize(method) + bytesFieldSize(args) + bytesFieldSize(from) + numberFieldSize(tell.hops)
  return envelope(18, size, out => {
    out.text(10, tell.to, to)
    out.text(18, tell.method, method)
    out.text(26, tell.args, args)
    out.text(34, tell.from, from)
    out.number(40, tell.hops)
  })
}

function encodeReply (reply: CellReply): Uint8Array {
  const status = STATUS_NUMBER[reply.status]
  const text = Buffer.byteLength(reply.text)
  const hint = Buffer.byteLength(reply.hint)
  const size = bytesFieldSize(reply.id.byteLength) + numberFieldSize(status) + bytesFieldSize(text) + bytesFieldSize(hint) + numberFieldSize(reply.epoch)
  return envelope(26, size, out => {
    out.raw(10, reply.id)
    out.number(16, status)
    out.text(26, reply.text, text)
    out.text(34, reply.hint, hint)
    out.number(40, reply.epoch)
  })
}

/** The protobuf encoding of `message` (same bytes as `CellEnvelope.encode`). */
export function encodeEnvelope (message: CellEnvelope): Uint8Array {
  if (message.ask != null) return encodeAsk(message.ask)
  if (message.tell != null) return encodeTell(message.tell)
  if (message.reply != null) return encodeReply(message.reply)
  return CellEnvelope.encode(message)
}

/** The protobuf encoding of a CellBatch of already encoded envelopes (same bytes as `CellBatch.encode`). */
export function encodeBatch (messages: Uint8Array[]): Uint8Array {
  let size = 0
  for (const m of messages) size += 1 + varintSize(m.byteLength) + m.byteLength
  const out = new ProtoWriter(size)
  // an empty element of a repeated field is still written
  for (const m of messages) out.raw(10, m, true)
  return out.finish()
}
