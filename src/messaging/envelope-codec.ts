// Hand-written encoders for the hot path of cell messaging: asks, tells and replies and
// the batch that carries them. They produce exactly the bytes protons does (fields in
// number order, proto3 defaults left out; tests compare both), without protons' generic
// writer, which allocates a fork per nested message and costs several µs per small
// message — the largest cost of a burst of tells. Transforms (rare) use protons.
import { CellEnvelope, ReplyStatus } from '../wire/proto/cell.js'
import type { CellAsk, CellReply, CellTell } from '../wire/proto/cell.js'

const STATUS_NUMBER: Record<ReplyStatus, number> = { [ReplyStatus.OK]: 0, [ReplyStatus.ERROR]: 1, [ReplyStatus.NOT_HERE]: 2, [ReplyStatus.BUSY]: 3 }

/** Size of an unsigned varint (numbers up to 2^53, or bigints up to 2^64). */
function varintSize (value: number | bigint): number {
  if (typeof value === 'bigint') {
    let size = 1
    while (value >= 128n) { value >>= 7n; size++ }
    return size
  }
  let size = 1
  while (value >= 128) { value = Math.floor(value / 128); size++ }
  return size
}

/** Writes into one preallocated buffer; the caller sized it exactly. */
class Out {
  readonly bytes: Buffer
  at = 0
  constructor (size: number) { this.bytes = Buffer.allocUnsafe(size) }

  varint (value: number | bigint): void {
    if (typeof value === 'bigint') {
      while (value >= 128n) { this.bytes[this.at++] = Number(value & 127n) | 128; value >>= 7n }
      this.bytes[this.at++] = Number(value)
      return
    }
    while (value >= 128) { this.bytes[this.at++] = (value % 128) | 128; value = Math.floor(value / 128) }
    this.bytes[this.at++] = value
  }

  /** a length-delimited field whose content is `length` bytes of utf8 `text` or raw `bytes` */
  text (tag: number, text: string, length: number): void {
    if (length === 0) return
    this.bytes[this.at++] = tag
    this.varint(length)
    this.at += this.bytes.write(text, this.at, length, 'utf8')
  }

  raw (tag: number, bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return
    this.bytes[this.at++] = tag
    this.varint(bytes.byteLength)
    this.bytes.set(bytes, this.at)
    this.at += bytes.byteLength
  }

  number (tag: number, value: number | bigint): void {
    // proto3: a zero is not written
    if (value === 0 || value === 0n) return
    this.bytes[this.at++] = tag
    this.varint(value)
  }
}

const bytesField = (length: number): number => length === 0 ? 0 : 1 + varintSize(length) + length
const numberField = (value: number | bigint): number => value === 0 || value === 0n ? 0 : 1 + varintSize(value)

/** The envelope's bytes: field `tag` of CellEnvelope holding a `size`-byte message written by `write`. */
function envelope (tag: number, size: number, write: (out: Out) => void): Uint8Array {
  const out = new Out(1 + varintSize(size) + size)
  out.bytes[out.at++] = tag
  out.varint(size)
  write(out)
  if (out.at !== out.bytes.byteLength) throw new Error(`envelope encoder wrote ${out.at} of ${out.bytes.byteLength} bytes`)
  return out.bytes
}

function encodeAsk (ask: CellAsk): Uint8Array {
  const to = Buffer.byteLength(ask.to)
  const method = Buffer.byteLength(ask.method)
  const args = Buffer.byteLength(ask.args)
  const from = Buffer.byteLength(ask.from)
  const size = bytesField(ask.id.byteLength) + bytesField(to) + bytesField(method) + bytesField(args) + numberField(ask.deadline) + bytesField(from)
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
  const size = bytesField(to) + bytesField(method) + bytesField(args) + bytesField(from) + numberField(tell.hops)
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
  const size = bytesField(reply.id.byteLength) + numberField(status) + bytesField(text) + bytesField(hint) + numberField(reply.epoch)
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
  const out = new Out(size)
  for (const m of messages) {
    // an empty element of a repeated field is still written
    out.bytes[out.at++] = 10
    out.varint(m.byteLength)
    out.bytes.set(m, out.at)
    out.at += m.byteLength
  }
  return out.bytes
}
