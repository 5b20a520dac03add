// Fencing (SPEC §2): a node keeps running an instance only while its app's latest
// announcement wants it there. A node that returns after being declared dead, or whose
// instance moved to another node, or whose app scaled down or was reverted, reverts its
// copies instead of serving stale state — never two live primaries for one instance.
import type { AppAnnouncement } from './announcement.js'

const INSTANCE = /^[^/]+\/([^#]+)#(\d+)$/

/** The addresses among `local` (this node's transformed cells) that `a` no longer places on `self`. */
export function unwantedInstances (a: AppAnnouncement, local: string[], self: string): string[] {
  const prefix = `${a.app}/`
  const replicas = new Map(a.cells.map(c => [c.name, c.replicas]))
  return local.filter(address => {
    if (!address.startsWith(prefix)) return false
    const m = INSTANCE.exec(address)
    if (m === null) return false
    if (a.reverted || (replicas.get(m[1]) ?? 0) <= Number(m[2])) return true
    // another node now runs this instance (the leader saw it start there)
    const inst = a.instances.find(i => i.address === address)
    return inst !== undefined && inst.node !== '' && inst.node !== self && inst.state === 'transformed'
  })
}
