// Nodes as people read them in the CLI's tables and lines: the name given with
// `stem start --name` (the demo's node-1…) and the short peer id. --json keeps ids whole.
import type { ApiClient } from '../api/client.js'
import type { PeersResponse } from '../api/types.js'
import { shortPeerId } from '../util/peer-id-text.js'

/** `node-1(12D3…zRadrU)`, or the short id alone for a node without a name; no spaces, so table columns stay one word */
export function nodeLabel (node: { id: string, name?: string }): string {
  return node.name !== undefined ? `${node.name}(${shortPeerId(node.id)})` : shortPeerId(node.id)
}

/** peer id → label, from the node's capacity view (ids it does not know: their short id) */
export async function nodeLabels (client: ApiClient): Promise<(id: string) => string> {
  const view = await client.get<PeersResponse>('/v1/peers').catch(() => undefined)
  const names = new Map([view?.self, ...(view?.peers ?? [])].flatMap(p => p?.name !== undefined ? [[p.id, p.name] as const] : []))
  return id => nodeLabel({ id, name: names.get(id) })
}
