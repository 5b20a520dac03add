// A machine with a public IP on its own interface (a cloud VM): libp2p counts a public
// listen address as unverified until AutoNAT has had other peers dial it back, and leaves
// it out of the node's addresses until then (for ever without AutoNAT, see libp2p.ts), so
// the first node of a mesh would hand out invites and identify records without any
// address a friend can dial. Stem announces the
// public addresses it listens on from the start; one that turns out to be firewalled
// costs a failed dial, after which the relay still works.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { isLinkLocalIp, isPrivateIp } from '@libp2p/utils'

type Interfaces = Record<string, NetworkInterfaceInfo[] | undefined>

/**
 * The public addresses behind TCP listen multiaddrs: a wildcard (0.0.0.0, ::) expands to
 * every address of its family on the host's interfaces. Port 0 (chosen at listen time)
 * and anything that is not plain IP/TCP give none.
 */
export function publicListenAddresses (listen: string[], interfaces: Interfaces = networkInterfaces()): string[] {
  const out = new Set<string>()
  for (const text of listen) {
    let parts
    try {
      parts = multiaddr(text).getComponents()
    } catch {
      continue
    }
    if (parts.length !== 2 || parts[1].name !== 'tcp' || (parts[0].name !== 'ip4' && parts[0].name !== 'ip6')) continue
    const family = parts[0].name
    const host = parts[0].value ?? ''
    const port = Number(parts[1].value)
    if (!(port > 0)) continue
    const hosts = host === '0.0.0.0' || host === '::'
      ? Object.values(interfaces).flatMap(list => list ?? [])
        .filter(i => i.family === (family === 'ip4' ? 'IPv4' : 'IPv6') && !i.internal && !isLinkLocalIp(i.address))
        .map(i => i.address)
      : [host]
    for (const h of hosts) {
      if (isPrivateIp(h) !== true) out.add(`/${family}/${h}/tcp/${port}`)
    }
  }
  return [...out]
}
