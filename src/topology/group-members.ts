// Which nodes form an app's Raft group (SPEC §2: 3, or fewer if the mesh is smaller).
// Live members stay (changing a Raft group's membership is costly and risky); free seats
// go to live nodes in failure zones the group does not cover yet, then to the largest
// contributors; ties by peer id, so every node computes the same group.
import type { NodeCapacity, PeerId } from './types.js'

export function pickGroupMembers (nodes: NodeCapacity[], n = 3, current: PeerId[] = []): PeerId[] {
  const live = new Map<PeerId, NodeCapacity>()
  for (const node of nodes) if (node.alive) live.set(node.id, node)
  const zone = (id: PeerId): string => live.get(id)?.zone ?? `node:${id}`
  const chosen = [...new Set(current)].filter(id => live.has(id)).sort().slice(0, n)
  const zones = new Set(chosen.map(zone))
  const rest = [...live.values()].filter(node => !chosen.includes(node.id))
  while (chosen.length < n && rest.length > 0) {
    rest.sort((a, b) =>
      Number(zones.has(zone(a.id))) - Number(zones.has(zone(b.id))) ||
      b.contributed.memory - a.contributed.memory ||
      b.contributed.cells - a.contributed.cells ||
      (a.id < b.id ? -1 : 1))
    const next = rest.shift() as NodeCapacity
    chosen.push(next.id)
    zones.add(zone(next.id))
  }
  return chosen.sort()
}
