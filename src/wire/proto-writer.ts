// A minimal protobuf writer for hand-written hot-path encoders (frames, cell envelopes):
// the caller computes the exact size first, then writes fields into one buffer, with
// proto3's rule that default values (empty, zero) are left out.

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** Size of an unsigned varint (numbers up to 2^53, or bigints up to 2^64). */
export function varintSize (value: number | bigint): number {
  // bigint arithmetic costs microseconds: sequence numbers and timestamps fit a number
  if (typeof value === 'bigint' && value <= MAX_SAFE) value = Number(value)
  if (typeof value === 'bigint') {
    let size = 1
    while (value >= 128n) { value >>= 7n; size++ }
    return size
  }
  let size = 1
  while (value >= 128) { value = Math.floor(value / 128); size++ }
  return size
}

/** Size of a length-delimited field with a one-byte tag (0 when empty: left out). */
export const bytesFieldSize = (length: number): number => length === 0 ? 0 : 1 + varintSize(length) + length
/** Size of a varint field with a one-byte tag (0 when zero: left out). */
export const numberFieldSize = (value: number | bigint): number => value === 0 || value === 0n ? 0 : 1 + varintSize(value)

/** Writes into one buffer of the exact size; tags are single bytes (field numbers below 16). */
export class ProtoWriter {
  readonly bytes: Buffer
  at = 0
  constructor (size: number) { this.bytes = Buffer.allocUnsafe(size) }

  byte (value: number): void {
    this.bytes[this.at++] = value
  }

  varint (value: number | bigint): void {
    if (typeof value === 'bigint' && value <= MAX_SAFE) value = Number(value)
    if (typeof value === 'bigint') {
      while (value >= 128n) { this.bytes[this.at++] = Number(value & 127n) | 128; value >>= 7n }
      this.bytes[this.at++] = Number(value)
      return
    }
    while (value >= 128) { this.bytes[this.at++] = (value % 128) | 128; value = Math.floor(value / 128) }
    this.bytes[this.at++] = value
  }

  /** a string field of `length` utf8 bytes (left out when empty) */
  text (tag: number, text: string, length: number): void {
    if (length === 0) return
    this.bytes[this.at++] = tag
    this.varint(length)
    this.at += this.bytes.write(text, this.at, length, 'utf8')
  }

  /** a bytes field (left out when empty, unless `always`: a oneof member or a repeated element) */
  raw (tag: number, bytes: Uint8Array, always = false): void {
    if (bytes.byteLength === 0 && !always) return
    this.bytes[this.at++] = tag
    this.varint(bytes.byteLength)
    this.bytes.set(bytes, this.at)
    this.at += bytes.byteLength
  }

  /** a varint field (left out when zero) */
  number (tag: number, value: number | bigint): void {
    if (value === 0 || value === 0n) return
    this.bytes[this.at++] = tag
    this.varint(value)
  }

  /** the written bytes; throws if the precomputed size was wrong */
  finish (): Buffer {
    if (this.at !== this.bytes.byteLength) throw new Error(`protobuf writer wrote ${this.at} of ${this.bytes.byteLength} bytes`)
    return this.bytes
  }
}
