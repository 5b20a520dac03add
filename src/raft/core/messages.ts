// Building and checking raft messages.
import { EntryType, MessageType } from '../types.js'
import type { Message, NodeId } from '../types.js'

const EMPTY = new Uint8Array(0)

export function makeMessage (m: Partial<Message> & { type: MessageType, to: NodeId }): Message {
  return {
    type: m.type,
    from: m.from ?? '',
    to: m.to,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? [],
    commit: m.commit ?? 0,
    snapshot: m.snapshot,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    context: m.context ?? EMPTY
  }
}

/** Types only the node itself may produce (ticks, transport reports). */
const LOCAL_TYPES = new Set([MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum])
/** Forwarded to the leader without a term (etcd: treated like local messages). */
const TERMLESS_TYPES = new Set([MessageType.Prop, MessageType.ReadIndex])

export function isResponse (t: MessageType): boolean {
  return t === MessageType.AppResp || t === MessageType.VoteResp || t === MessageType.PreVoteResp ||
    t === MessageType.HeartbeatResp || t === MessageType.ReadIndexResp
}

function isCount (n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

const MAX_ID_LENGTH = 256

/**
 * Checks a message received from the network; returns a one-line reason when it is
 * malformed (such a message must be dropped without touching any state), else undefined.
 */
export function checkMessage (m: Message, self: NodeId): string | undefined {
  if (typeof m !== 'object' || m === null) return 'not an object'
  if (typeof MessageType[m.type] !== 'string') return `unknown type ${String(m.type)}`
  if (LOCAL_TYPES.has(m.type)) return `${MessageType[m.type]} is a local message type`
  if (typeof m.from !== 'string' || m.from === '' || m.from.length > MAX_ID_LENGTH) return 'bad sender id'
  if (m.from === self) return 'message from itself'
  if (m.to !== self) return `addressed to ${String(m.to)}, not to ${self}`
  for (const f of ['term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) {
    if (!isCount(m[f])) return `${f} is not a non-negative integer`
  }
  if (TERMLESS_TYPES.has(m.type) ? m.term !== 0 : m.term === 0) return `${MessageType[m.type]} with term ${m.term}`
  if (typeof m.reject !== 'boolean') return 'reject is not a boolean'
  if (!(m.context instanceof Uint8Array)) return 'context is not bytes'
  if (!Array.isArray(m.entries)) return 'entries is not an array'
  if (m.entries.length > 0 && m.type !== MessageType.App && m.type !== MessageType.Prop) return `${MessageType[m.type]} carries entries`
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]
    if (typeof e !== 'object' || e === null || !(e.data instanceof Uint8Array)) return `entry ${i} has no data`
    if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) return `entry ${i} has unknown type ${String(e.type)}`
    if (m.type === MessageType.App) {
      if (!isCount(e.index) || !isCount(e.term)) return `entry ${i} has a bad index or term`
      if (e.index !== m.index + 1 + i) return `entry ${i} has index ${e.index}, expected ${m.index + 1 + i}`
      const prevTerm = i === 0 ? m.logTerm : m.entries[i - 1].term
      if (e.term < prevTerm || e.term > m.term) return `entry ${e.index} has term ${e.term} out of order`
    }
  }
  if (m.type === MessageType.App && m.logTerm > m.term) return `logTerm ${m.logTerm} above term ${m.term}`
  if (m.type === MessageType.Prop && m.entries.length === 0) return 'proposal without entries'
  if (m.type === MessageType.Snap) {
    const s = m.snapshot
    if (s === undefined || typeof s !== 'object' || !(s.data instanceof Uint8Array)) return 'snapshot missing'
    const md = s.metadata
    if (typeof md !== 'object' || md === null || !isCount(md.index) || !isCount(md.term) || md.index === 0) return 'bad snapshot metadata'
    if (md.term > m.term) return 'snapshot term above message term'
    if (typeof md.conf !== 'object' || md.conf === null || !Array.isArray(md.conf.voters) || !Array.isArray(md.conf.learners)) return 'bad snapshot configuration'
    if (![...md.conf.voters, ...md.conf.learners].every(v => typeof v === 'string' && v !== '')) return 'bad node id in snapshot configuration'
  }
  return undefined
}
