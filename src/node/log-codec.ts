// Wire encoding of the logs protocol (logs.proto) and the one check of a log query, shared
// by the control API and the protocol. Decoding refuses oversized, truncated or malformed
// bytes and invalid queries with a one-line reason.
import { LogsAnswer, LogsRequest } from '../wire/proto/logs.js'
import { parseAddress } from '../cells/address.js'
import { MAX_QUERY_LINES, MAX_STACK_CHARS, MAX_TEXT_CHARS, toLogLine } from './cell-logs.js'
import type { CellLogLine, CellLogQuery } from './cell-logs.js'

export const MAX_REQUEST_BYTES = 1024
/** an answer is cut (oldest lines first) to stay under this */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024
const MAX_ERROR_CHARS = 300

/** The query, checked: a valid app name, cell (`cell` or `cell#i`), since and limit. */
export function checkLogQuery (query: { app?: unknown, cell?: unknown, since?: unknown, limit?: unknown }): CellLogQuery {
  const { app, cell, since, limit } = query
  if (typeof app !== 'string' || app === '') throw new Error('logs: name an app')
  if (cell !== undefined && typeof cell !== 'string') throw new Error('logs: cell must be a string')
  // an app name holds no '/': `shop/x` would otherwise parse as the keyed address shop/x/<key>
  let valid = !app.includes('/')
  try {
    if (valid) valid = parseAddress(`${app}/${cell === undefined || cell === '' ? 'any' : cell}`).key === undefined
  } catch {
    valid = false
  }
  if (!valid) {
    throw new Error(`logs: invalid app or cell ${JSON.stringify(`${app}${cell === undefined || cell === '' ? '' : `/${cell}`}`.slice(0, 100))}`)
  }
  if (since !== undefined && (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0)) throw new Error('logs: since must be ms since the epoch')
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_QUERY_LINES)) throw new Error(`logs: limit must be 1…${MAX_QUERY_LINES}`)
  return { app, ...(cell !== undefined && cell !== '' ? { cell } : {}), ...(since !== undefined ? { since } : {}), ...(limit !== undefined ? { limit } : {}) }
}

export function encodeLogsRequest (query: CellLogQuery): Uint8Array {
  return LogsRequest.encode({ app: query.app, cell: query.cell ?? '', since: BigInt(query.since ?? 0), limit: query.limit ?? MAX_QUERY_LINES })
}

export function decodeLogsRequest (bytes: Uint8Array): CellLogQuery {
  if (bytes.byteLength > MAX_REQUEST_BYTES) throw new Error(`invalid logs request: ${bytes.byteLength} bytes (at most ${MAX_REQUEST_BYTES})`)
  let wire: LogsRequest
  try {
    wire = LogsRequest.decode(bytes)
  } catch (err) {
    throw new Error(`invalid logs request: ${(err as Error).message.split('\n')[0]}`)
  }
  if (wire.since > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('invalid logs request: since is out of range')
  return checkLogQuery({ app: wire.app, cell: wire.cell, since: Number(wire.since), limit: wire.limit === 0 ? undefined : wire.limit })
}

/** The answer's bytes: the newest lines that fit MAX_ANSWER_BYTES, or a refusal. */
export function encodeLogsAnswer (lines: CellLogLine[], error = ''): Uint8Array {
  let budget = MAX_ANSWER_BYTES - 1024
  const kept = []
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]
    const wire = { ts: BigInt(l.ts), seq: BigInt(l.seq), node: l.node, address: l.address, revision: l.revision, kind: l.kind, text: l.text, method: l.method ?? '', stack: l.stack ?? '' }
    // UTF-8 is at most 3 bytes per UTF-16 unit; fields and lengths add a few more
    budget -= 3 * (l.node.length + l.address.length + l.revision.length + l.text.length + wire.method.length + wire.stack.length) + 64
    if (budget < 0) break
    kept.push(wire)
  }
  return LogsAnswer.encode({ lines: kept.reverse(), error: error.split('\n')[0].slice(0, MAX_ERROR_CHARS) })
}

export function decodeLogsAnswer (bytes: Uint8Array): CellLogLine[] {
  if (bytes.byteLength > MAX_ANSWER_BYTES) throw new Error(`invalid logs answer: ${bytes.byteLength} bytes (at most ${MAX_ANSWER_BYTES})`)
  let wire: LogsAnswer
  try {
    wire = LogsAnswer.decode(bytes, { limits: { lines: MAX_QUERY_LINES } })
  } catch (err) {
    throw new Error(`invalid logs answer: ${(err as Error).message.split('\n')[0]}`)
  }
  if (wire.error !== '') throw new Error(wire.error.slice(0, MAX_ERROR_CHARS))
  const lines: CellLogLine[] = []
  for (const l of wire.lines) {
    if (l.ts > BigInt(Number.MAX_SAFE_INTEGER) || l.seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('invalid logs answer: a timestamp is out of range')
    if (l.text.length > MAX_TEXT_CHARS || l.stack.length > MAX_STACK_CHARS) throw new Error('invalid logs answer: a line is too long')
    const line = toLogLine({ ...l, ts: Number(l.ts), seq: Number(l.seq) })
    if (line === undefined) throw new Error(`invalid logs answer: a line of kind ${JSON.stringify(l.kind.slice(0, 20))}`)
    lines.push(line)
  }
  return lines
}
