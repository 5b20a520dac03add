// `stem logs` across the mesh: /stem/<mesh>/logs/1 serves this node's cell log lines of
// one app to other members, and `gather` asks every live node for them and merges all
// lines (its own too) in time order. One request and one answer per stream, each a signed
// Frame; the answer is bounded (MAX_ANSWER_BYTES). A node that does not answer in time is
// named in `missing`, not an error: logs are best effort.
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { readOne, writeFrame } from '../messaging/framing.js'
import { createFrameVerifier } from '../wire/frame.js'
import type { FrameSigner } from '../wire/frame.js'
import { MAX_QUERY_LINES, mergeLines } from './cell-logs.js'
import type { CellLogLine, CellLogQuery, CellLogs } from './cell-logs.js'
import { MAX_ANSWER_BYTES, MAX_REQUEST_BYTES, decodeLogsAnswer, decodeLogsRequest, encodeLogsAnswer, encodeLogsRequest } from './log-codec.js'

export interface LogExchangeComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  signer: FrameSigner
  logs: CellLogs
  /** the other nodes to ask */
  peers: () => string[]
}

export interface LogExchangeInit {
  mesh: string
  /** ms one node may take to answer (default 3 s) */
  timeout?: number
}

export interface GatheredLogs {
  lines: CellLogLine[]
  /** nodes that did not answer, with why */
  missing: string[]
}

export interface LogExchange {
  readonly protocol: string
  start: () => Promise<void>
  stop: () => Promise<void>
  /** this node's lines and those of every other live node, merged in time order */
  gather: (query: CellLogQuery, signal?: AbortSignal) => Promise<GatheredLogs>
  /** one node's lines */
  fetch: (peer: string, query: CellLogQuery, signal?: AbortSignal) => Promise<CellLogLine[]>
  /** frames refused by the verifier (metrics, tests) */
  rejected: () => number
}

const FRAME_OVERHEAD = 256

export function createLogExchange (components: LogExchangeComponents, init: LogExchangeInit): LogExchange {
  const protocol = `/stem/${init.mesh}/logs/1`
  const timeout = init.timeout ?? 3000
  const verifier = createFrameVerifier({ maxBytes: MAX_ANSWER_BYTES + FRAME_OVERHEAD, name: 'logs' })
  let running = false

  const close = async (stream: Stream, why: string): Promise<void> => {
    await stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error(why)) })
  }

  const serve = (stream: Stream, connection: Connection): void => {
    const peer = connection.remotePeer.toString()
    readOne(stream, MAX_REQUEST_BYTES + FRAME_OVERHEAD, AbortSignal.timeout(timeout)).then(async bytes => {
      const verified = verifier.verify(bytes, { remotePeer: peer, expect: 'leaders' })
      if (!verified.ok) { stream.abort(new Error(`bad logs request frame: ${verified.reason}`)); return }
      let answer: Uint8Array
      try {
        answer = encodeLogsAnswer(components.logs.query(decodeLogsRequest(verified.payload)))
      } catch (err) {
        answer = encodeLogsAnswer([], (err as Error).message)
      }
      writeFrame(stream, components.signer.sign('leaders', answer))
      await close(stream, 'logs answer sent')
    }, (err: Error) => { stream.abort(new Error(`bad logs request frame: ${err.message}`)) })
      // the asker went away before its answer (a closed stream throws on write): never an unhandled rejection
      .catch((err: Error) => { stream.abort(err) })
  }

  const fetch = async (peer: string, query: CellLogQuery, signal?: AbortSignal): Promise<CellLogLine[]> => {
    const deadline = AbortSignal.any([AbortSignal.timeout(timeout), ...(signal === undefined ? [] : [signal])])
    const stream = await components.libp2p.dialProtocol(peerIdFromString(peer), protocol, { signal: deadline })
    try {
      const answer = readOne(stream, MAX_ANSWER_BYTES + FRAME_OVERHEAD, deadline)
      writeFrame(stream, components.signer.sign('leaders', encodeLogsRequest(query)))
      const verified = verifier.verify(await answer, { remotePeer: peer, expect: 'leaders' })
      if (!verified.ok) throw new Error(`rejected answer: ${verified.reason}`)
      // a node answers for cells that ran on it only
      return decodeLogsAnswer(verified.payload).filter(l => l.node === peer)
    } finally {
      await close(stream, 'logs request done')
    }
  }

  return {
    protocol,
    async start () {
      if (running) return
      await components.libp2p.handle(protocol, serve, { maxInboundStreams: 8 })
      running = true
    },
    async stop () {
      if (!running) return
      running = false
      await components.libp2p.unhandle(protocol)
    },
    fetch,
    async gather (query, signal) {
      const peers = components.peers().filter(p => p !== components.signer.peerId)
      const missing: string[] = []
      const remote = await Promise.all(peers.map(async peer => {
        try {
          return await fetch(peer, query, signal)
        } catch (err) {
          missing.push(`${peer}: ${(err as Error).message.split('\n')[0]}`)
          return []
        }
      }))
      const lines = mergeLines([...components.logs.query(query), ...remote.flat()])
      return { lines: lines.slice(Math.max(0, lines.length - (query.limit ?? MAX_QUERY_LINES))), missing }
    },
    rejected: () => verifier.rejected()
  }
}
