// The node's check of what a cell host sends: the host runs hostile code (in isolates,
// but a process that was broken into can send anything), so every message's fields are
// checked for their types before the node acts on one.
import type { FromHost } from './protocol.js'
import type { LinkMessage } from './link.js'

type FieldType = 'string' | 'number' | 'boolean'

/** each message type's fields and their types */
const FIELDS: { [K in FromHost['t']]: Record<string, FieldType> } = {
  ready: {},
  done: { req: 'number', ok: 'boolean', text: 'string', version: 'number' },
  reply: { id: 'number', ok: 'boolean', text: 'string' },
  told: { address: 'string', n: 'number' },
  state: { address: 'string', state: 'string', version: 'number' },
  event: { address: 'string', kind: 'string', reason: 'string' },
  ask: { askId: 'number', from: 'string', address: 'string', method: 'string', args: 'string', tell: 'boolean' },
  log: { address: 'string', text: 'string' },
  error: { address: 'string', method: 'string', text: 'string', stack: 'string' },
  pong: { n: 'number', rss: 'number' }
}

const FAULTS = new Set(['crashed', 'restarted', 'failed'])

/** Why `message` is not a message a cell host may send, or undefined. */
export function fromHostError (message: LinkMessage): string | undefined {
  const fields = Object.hasOwn(FIELDS, message.t) ? FIELDS[message.t as FromHost['t']] : undefined
  if (fields === undefined) return `an unknown message type ${JSON.stringify(message.t.slice(0, 40))}`
  const record = message as unknown as Record<string, unknown>
  for (const name in fields) {
    if (typeof record[name] !== fields[name]) return `a '${message.t}' message whose ${name} is not a ${fields[name]}`
  }
  if (message.t === 'event' && !FAULTS.has(record.kind as string)) return "an 'event' message of an unknown kind"
  return undefined
}
