// libp2p reports an inbound connection that fails its handshake only to its debug
// logger. A node dialling us with another mesh key fails exactly there (pnet turns its
// bytes into noise), so we wrap libp2p's component logger to notice those failures and
// tell the user once per remote host, while libp2p's own DEBUG output is unchanged.
import { defaultLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** The upgrader's log line for a failed upgrade (libp2p 3.x, upgrader.js). */
const FAILED_UPGRADE = 'failed to upgrade %s connection %s %a - %e'

export function createRefusalLogger (onRefused: (remoteAddr: string, error: Error) => void): ComponentLogger {
  const base = defaultLogger()
  const wrap = (log: Logger): Logger => {
    const wrapped = ((formatter: unknown, ...args: unknown[]) => { log(formatter, ...args) }) as Logger
    wrapped.enabled = log.enabled
    wrapped.trace = log.trace
    wrapped.error = (formatter: unknown, ...args: unknown[]) => {
      if (formatter === FAILED_UPGRADE && args[0] === 'inbound') {
        try { onRefused(String(args[2]), args[3] instanceof Error ? args[3] : new Error(String(args[3]))) } catch {}
      }
      log.error(formatter, ...args)
    }
    wrapped.newScope = (name: string) => wrap(log.newScope(name))
    return wrapped
  }
  return { forComponent: (name: string) => wrap(base.forComponent(name)) }
}
