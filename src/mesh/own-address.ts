// Whether a dial would reach this node itself. An invite lists every address of the node
// that made it, 127.0.0.1 among them; a joiner on another host that listens on the same
// port would dial itself there, fail the handshake against its own listener, and log a
// false "a node with another mesh key?" about 127.0.0.1.
import type { Multiaddr } from '@multiformats/multiaddr'

/** `host:port` of a direct TCP address (not relayed), or undefined */
function tcpEndpoint (addr: Multiaddr): string | undefined {
  const parts = addr.getComponents()
  if (parts.some(c => c.name === 'p2p-circuit')) return undefined
  const host = parts.find(c => c.name === 'ip4' || c.name === 'ip6')?.value
  const port = parts.find(c => c.name === 'tcp')?.value
  return host === undefined || port === undefined ? undefined : `${host}:${port}`
}

/** `addr` is a direct TCP address this node listens on (`own`: its listen addresses, wildcards expanded) */
export function isOwnAddress (addr: Multiaddr, own: readonly Multiaddr[]): boolean {
  const endpoint = tcpEndpoint(addr)
  return endpoint !== undefined && own.some(a => tcpEndpoint(a) === endpoint)
}
