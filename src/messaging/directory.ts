// Where cells live: address → node. Pluggable: a static table now; the topology layer
// fills one from each app's Raft state (placements with their epochs).
import { instanceAddress, parseAddress } from '../cells/address.js'

export interface CellLocation {
  /** peer id of the node holding the cell */
  peer: string
  /** placement epoch (grows each time the cell is placed again) */
  epoch: number
}

export interface CellDirectory {
  /**
   * The node for `app/cell#i`, or for `app/cell` any replica's node (the directory may
   * balance). undefined: the address is unknown.
   */
  resolve: (address: string) => CellLocation | undefined
  /** the instances (shards) of a keyed cell `app/cell`, if known: a key's shard is cells/keys.ts's shardOfKey */
  shards?: (app: string, cell: string) => number | undefined
}

export interface StaticDirectory extends CellDirectory {
  /** place `app/cell#i` (or `app/cell`) on `peer`; the epoch defaults to the previous one + 1 */
  set: (address: string, peer: string, epoch?: number) => void
  delete: (address: string) => void
  entries: () => Array<[string, CellLocation]>
}

/** A directory from a table: exact addresses first, then round robin over `app/cell#i` replicas for `app/cell`. */
export function createStaticDirectory (entries: Record<string, string> = {}): StaticDirectory {
  const table = new Map<string, CellLocation>()
  const replicas = new Map<string, string[]>()
  const turns = new Map<string, number>()

  const index = (address: string, add: boolean): void => {
    const { app, cell, replica } = parseAddress(address)
    if (replica === undefined) return
    const base = `${app}/${cell}`
    const list = (replicas.get(base) ?? []).filter(a => a !== address)
    if (add) list.push(address)
    if (list.length > 0) replicas.set(base, list)
    else replicas.delete(base)
  }

  const directory: StaticDirectory = {
    resolve (address) {
      const exact = table.get(address) ?? (address.indexOf('/') !== address.lastIndexOf('/') ? table.get(instanceAddress(address) ?? '') : undefined)
      if (exact !== undefined) return exact
      const list = replicas.get(address)
      if (list === undefined) return undefined
      const turn = (turns.get(address) ?? 0) + 1
      turns.set(address, turn)
      return table.get(list[turn % list.length])
    },
    shards: (app, cell) => replicas.get(`${app}/${cell}`)?.length,
    set (address, peer, epoch) {
      const previous = table.get(address)
      table.set(address, { peer, epoch: epoch ?? (previous?.epoch ?? 0) + 1 })
      index(address, true)
    },
    delete (address) {
      table.delete(address)
      index(address, false)
    },
    entries: () => [...table.entries()]
  }
  for (const [address, peer] of Object.entries(entries)) directory.set(address, peer)
  return directory
}
