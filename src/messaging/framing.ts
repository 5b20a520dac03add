// Length-prefixed frames over a libp2p 3 stream (message events, no sink/source): each
// frame is a 4-byte big-endian length and that many bytes. Reading can be paused
// (stream.pause stops yamux window updates, so the sender's `send` returns false);
// writing reports whether the stream wants a drain first.
import { Uint8ArrayList } from 'uint8arraylist'
import type { Stream } from '@libp2p/interface'

export interface FrameReaderHandlers {
  onFrame: (frame: Uint8Array) => void
  /** a length prefix over the limit: the stream is aborted after this */
  onOversized: (length: number) => void
  /** no more frames will come (closed, or the remote closed its writing end); `unread`: bytes left over (an incomplete frame, or frames held while paused) */
  onClose: (unread: number) => void
  /** while true, frames stay buffered (the stream is paused too, so the buffer is bounded by its window) */
  paused?: () => boolean
}

export interface FrameReader {
  /** deliver frames buffered while paused */
  resume: () => void
}

/** Feeds complete frames of `stream` to `onFrame` until the stream closes. */
export function readFrames (stream: Stream, maxFrameBytes: number, handlers: FrameReaderHandlers): FrameReader {
  const buffer = new Uint8ArrayList()
  let done = false
  const parse = (): void => {
    while (buffer.byteLength >= 4 && handlers.paused?.() !== true) {
      const length = buffer.getUint32(0)
      if (length > maxFrameBytes) {
        done = true
        handlers.onOversized(length)
        stream.abort(new Error(`frame of ${length} bytes is over the ${maxFrameBytes}-byte limit`))
        return
      }
      if (buffer.byteLength < 4 + length) return
      const frame = buffer.subarray(4, 4 + length)
      buffer.consume(4 + length)
      handlers.onFrame(frame)
      if (done) return
    }
  }
  const onMessage = (event: { data: Uint8Array | Uint8ArrayList }): void => {
    if (done) return
    buffer.append(event.data)
    parse()
  }
  // the end of input: the stream closed, or everything the other side wrote before
  // closing its writing end has been read ('end')
  let ended = false
  const finish = (): void => {
    if (ended) return
    ended = true
    const unread = done ? 0 : buffer.byteLength
    done = true
    stream.removeEventListener('message', onMessage)
    handlers.onClose(unread)
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', finish, { once: true })
  stream.addEventListener('end', finish, { once: true })
  return { resume: () => { if (!done) parse() } }
}

/** Prefix `frame` with its length. */
export function encodeFrame (frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + frame.byteLength)
  new DataView(out.buffer).setUint32(0, frame.byteLength)
  out.set(frame, 4)
  return out
}

/** Send one frame; false when the stream's buffer is full and the writer should wait for 'drain'. */
export function writeFrame (stream: Stream, frame: Uint8Array): boolean {
  return stream.send(encodeFrame(frame))
}

/** The first frame on `stream`; rejects on close before one, an oversized prefix, or the signal. */
export function readOne (stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  const { promise, resolve, reject } = Promise.withResolvers<Uint8Array>()
  let settled = false
  const onAbort = (): void => { settled = true; reject(new Error('timed out')) }
  signal.addEventListener('abort', onAbort, { once: true })
  readFrames(stream, maxBytes, {
    onFrame: frame => {
      if (settled) return
      settled = true
      signal.removeEventListener('abort', onAbort)
      resolve(frame)
    },
    onOversized: length => {
      if (settled) return
      settled = true
      reject(new Error(`frame of ${length} bytes is over the ${maxBytes}-byte limit`))
    },
    onClose: () => {
      if (settled) return
      settled = true
      reject(new Error('stream closed before a complete frame'))
    }
  })
  // a caller that starts reading before it writes its request may never await the answer
  // (the write threw: the stream closed); its later rejection must not be unhandled, which
  // ends the node's process (a node crashed on 'timed out' under chaos and in a CI run)
  promise.catch(() => {})
  return promise
}
