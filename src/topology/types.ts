// The minimal view of nodes the topology layer needs. The mesh layer's capacity view
// (gossiped adverts) carries this information; the integration maps it onto these types.

/** a libp2p peer id, as its string form */
export type PeerId = string

/** what a node contributes: CPU cores, memory in bytes, number of cells */
export interface Resources {
  cpu: number
  memory: number
  cells: number
}

/** an amount of memory (bytes) and cells, claimed or used */
export interface Amount {
  memory: number
  cells: number
}

export interface NodeCapacity {
  id: PeerId
  contributed: Resources
  /** false once the node's adverts stopped or the failure detector gave up on it */
  alive: boolean
  /**
   * failure domain: nodes sharing it likely fail together (e.g. the /24 of the node's
   * address, or its host name). Undefined = its own domain.
   */
  zone?: string
}

/** address of one instance of a cell: `app/cell#i` (SPEC §2) */
export function instanceAddress (app: string, cell: string, index: number): string {
  return `${app}/${cell}#${index}`
}
