// Liveness probes on a connection whose stream muxer has no ping of its own (WebRTC). Each
// new stream there is a new data channel, and a churn of short-lived channels once left a
// WebRTC connection unable to open any more, so a probe is not a stream: each connection
// gets one long-lived probe stream, and a probe is one byte on it that the remote node
// echoes. A node stopped (SIGSTOP, a frozen VM) echoes nothing, which is the verdict.
//
// Answers are matched to probes by count: every byte sent has one waiter, and each byte
// that comes back settles the oldest (one timed out meanwhile is settled by its late echo
// and counts for nothing). The echo side answers at most MAX_ECHO bytes per message and
// closes a stream that sends more, so a peer cannot use it to amplify anything.
import type { Connection, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** the probe stream's protocol id in mesh `mesh` */
export const probeProtocol = (mesh: string): string => `/stem/${mesh}/probe/1`
/** most bytes one message may carry: an honest prober has one probe in flight, a few after a freeze */
const MAX_ECHO = 64
const PROBE = new Uint8Array([0x70])

/** the protocol handler: echoes what arrives (bounded) until the stream closes */
export function echoProbes (stream: Stream): void {
  stream.addEventListener('message', (evt: { data: Uint8Array | Uint8ArrayList }) => {
    const bytes = evt.data.byteLength
    if (bytes > MAX_ECHO) { stream.abort(new Error(`probe message of ${bytes} bytes is over the ${MAX_ECHO}-byte limit`)); return }
    // a listener that throws ends the process (EventTarget): a stream closing meanwhile is no error here
    try {
      stream.send(new Uint8Array(bytes).fill(PROBE[0]))
    } catch {
      stream.abort(new Error('cannot echo a probe: the stream is closing'))
    }
  })
}

interface Waiter { resolve: () => void, reject: (err: Error) => void }

interface ProbeLine {
  stream: Promise<Stream>
  /** one per byte sent and not yet echoed, oldest first */
  waiters: Waiter[]
}

export interface ProbeStreams {
  /** whether `connection` can be probed (false once its remote node turned out not to serve the protocol) */
  probes: (connection: Connection) => boolean
  /** resolves once `connection`'s remote node echoes a probe; rejects on the signal, or when its probe stream fails (a node that does not serve the protocol fails with its own error: it runs) */
  ping: (connection: Connection, signal: AbortSignal) => Promise<void>
}

export function createProbeStreams (protocol: string): ProbeStreams {
  const lines = new WeakMap<Connection, ProbeLine>()
  /** connections whose remote node does not serve the protocol (an older stem): not probed, as no stream is opened per probe */
  const unsupported = new WeakSet<Connection>()
  const open = (connection: Connection, signal: AbortSignal): ProbeLine => {
    const line: ProbeLine = { stream: connection.newStream(protocol, { signal }), waiters: [] }
    lines.set(connection, line)
    // a closed probe stream is opened again by the next probe; what waited on it came from a live end
    const drop = (): void => {
      if (lines.get(connection) === line) lines.delete(connection)
      for (const w of line.waiters.splice(0)) w.reject(new Error('the probe stream closed'))
    }
    line.stream.then(stream => {
      // closed before this saw it (no close event will come)
      if (stream.status !== 'open') { drop(); return }
      stream.addEventListener('message', (evt: { data: Uint8Array | Uint8ArrayList }) => {
        for (let i = 0; i < evt.data.byteLength; i++) line.waiters.shift()?.resolve()
      })
      stream.addEventListener('close', drop, { once: true })
    }, (err: Error) => {
      if (err.name === 'UnsupportedProtocolError') unsupported.add(connection)
      drop()
    })
    return line
  }
  return {
    probes: connection => !unsupported.has(connection),
    async ping (connection, signal) {
      if (unsupported.has(connection)) return
      const line = lines.get(connection) ?? open(connection, signal)
      const stream = await line.stream
      signal.throwIfAborted()
      if (stream.status !== 'open') throw new Error('the probe stream closed')
      // sent first: a send that throws leaves no waiter behind to take a later probe's echo
      // (the echo cannot come back before this turn ends)
      stream.send(PROBE)
      const { promise, resolve, reject } = Promise.withResolvers<void>()
      line.waiters.push({ resolve, reject })
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        await promise
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    }
  }
}
