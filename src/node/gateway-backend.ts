// The gateway's backend on a node: asks go through cell messaging (any node of the mesh),
// replica counts come from the app table. Messaging failures that are not the cell's own
// become the gateway's CELL_UNAVAILABLE / CELL_OVERLOADED codes.
import { encodeKey } from '../cells/address.js'
import { createHash } from 'node:crypto'
import type { CellMessaging } from '../messaging/cell-messaging.js'
import { MessagingError } from '../messaging/errors.js'
import type { AppTable } from '../topology/app-table.js'
import { BackendError, BackendErrorCode, replyValue } from '../gateway/backend.js'
import type { GatewayBackend } from '../gateway/backend.js'

const UNAVAILABLE = new Set(['unknown-address', 'not-here', 'unreachable', 'stopped', 'timeout'])
const OVERLOADED = new Set(['backpressure', 'busy'])

/** messaging wants 32 hex digits; the gateway's ids are UUIDs (the same on every retry) */
function messageIdOf (id: string): string {
  const hex = id.replace(/-/g, '')
  return /^[0-9a-f]{32}$/i.test(hex) ? hex : createHash('sha256').update(id).digest('hex').slice(0, 32)
}

export function createMessagingBackend (messaging: CellMessaging, table: AppTable): GatewayBackend {
  return {
    dedupesByMessageId: true,
    replicas: (app, cell) => table.replicas(app, cell),
    async ask (target, method, args, options) {
      const address = target.key !== undefined ? `${target.app}/${target.cell}/${encodeKey(target.key)}` : target.instance === undefined ? `${target.app}/${target.cell}` : `${target.app}/${target.cell}#${target.instance}`
      try {
        return replyValue(await messaging.askJson(address, method, JSON.stringify(args), { messageId: messageIdOf(options.messageId), deadline: options.deadline, signal: options.signal }))
      } catch (err) {
        if (err instanceof MessagingError && UNAVAILABLE.has(err.code)) throw new BackendError(BackendErrorCode.unavailable, err.message)
        if (err instanceof MessagingError && OVERLOADED.has(err.code)) throw new BackendError(BackendErrorCode.overloaded, err.message)
        throw err
      }
    }
  }
}
