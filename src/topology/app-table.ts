// What this node knows of every app of the mesh: the latest announcement of each app's
// leader. It is the node's cell directory (address → node, round robin over replicas),
// and the source of `stem apps`, `stem cells` and the gateway's routes.
import type { CellDirectory, CellLocation } from '../messaging/directory.js'
import { parseAddress } from '../cells/address.js'
import { shardOfKey } from '../cells/keys.js'
import { isNewer } from './announcement.js'
import type { AppAnnouncement } from './announcement.js'

export interface AppListing {
  app: string
  owner: string
  leader: string
  term: number
  members: string[]
}

export interface CellListing {
  address: string
  node: string
  state: string
  clones: string[]
  /** the clones that hold the instance already (bundle and latest state) */
  clonesReady: string[]
  /** the revision (bundle and limits) its primary runs, if its leader knows */
  revision?: string
  /** whether that is the revision the app's manifest asks for now */
  current: boolean
  /** why a `failed` instance is not serving, as its node advertises it (and since when, ms since the epoch), or a `recovering` or `lost` one, as its leader announces it */
  reason?: string
  since?: number
}

/** a cell whose last rollout failed and was rolled back to the previous revision */
export interface RollbackListing {
  cell: string
  /** the revision that failed */
  revision: string
  error: string
  /** owner clock of the publish that brought it */
  at: number
}

/** a stream consumer that autoscales by lag: its bounds, its threshold and its replicas now */
export interface AutoscaleListing {
  cell: string
  min: number
  max: number
  lag: number
  replicas: number
}

export interface AppCellsListing {
  app: string
  cells: CellListing[]
  rollbacks: RollbackListing[]
  autoscale: AutoscaleListing[]
}

export class AppTable implements CellDirectory {
  private readonly apps = new Map<string, AppAnnouncement>()
  private readonly turns = new Map<string, number>()

  /** Records an announcement if it supersedes the known one; returns whether it did. */
  update (a: AppAnnouncement): boolean {
    if (!isNewer(a, this.apps.get(a.app))) return false
    if (a.reverted) this.apps.delete(a.app)
    else this.apps.set(a.app, a)
    return true
  }

  get (app: string): AppAnnouncement | undefined {
    return this.apps.get(app)
  }

  names (): string[] {
    return [...this.apps.keys()].sort()
  }

  resolve (address: string): CellLocation | undefined {
    const { app, cell, replica, key } = parseAddress(address)
    const a = this.apps.get(app)
    if (a === undefined) return undefined
    // a key's shard: the one its address names, else the one it hashes to
    const shard = key === undefined ? replica : replica ?? shardOfKey(key, Math.max(1, this.shards(app, cell) ?? 1))
    if (shard !== undefined) {
      const inst = a.instances.find(i => i.address === `${app}/${cell}#${shard}`)
      return inst === undefined || inst.node === '' ? undefined : { peer: inst.node, epoch: Number(inst.epoch) }
    }
    const prefix = `${app}/${cell}#`
    const live = a.instances.filter(i => i.address.startsWith(prefix) && i.node !== '')
    if (live.length === 0) return undefined
    const turn = (this.turns.get(address) ?? 0) + 1
    this.turns.set(address, turn)
    const inst = live[turn % live.length]
    return { peer: inst.node, epoch: Number(inst.epoch) }
  }

  /** instances of `app/cell`, placed or not: a keyed cell's shards (undefined for an unknown cell) */
  shards (app: string, cell: string): number | undefined {
    const prefix = `${app}/${cell}#`
    const n = this.apps.get(app)?.instances.filter(i => i.address.startsWith(prefix)).length ?? 0
    return n > 0 ? n : undefined
  }

  /** replicas of `app/cell` that have a node */
  replicas (app: string, cell: string): number {
    const prefix = `${app}/${cell}#`
    return this.apps.get(app)?.instances.filter(i => i.address.startsWith(prefix) && i.node !== '').length ?? 0
  }

  listApps (): AppListing[] {
    return this.names().map(name => {
      const a = this.apps.get(name) as AppAnnouncement
      return { app: a.app, owner: a.owner, leader: a.leader, term: Number(a.term), members: [...a.members] }
    })
  }

  listCells (app?: string): AppCellsListing[] {
    return this.names().filter(n => app === undefined || n === app).map(name => {
      const a = this.apps.get(name) as AppAnnouncement
      const wanted = new Map(a.cells.map(c => [c.name, c.revision]))
      const cellOf = (address: string): string => address.slice(address.indexOf('/') + 1, address.lastIndexOf('#'))
      return {
        app: name,
        cells: a.instances.map(i => ({ address: i.address, node: i.node, state: i.state, clones: [...i.clones], clonesReady: [...i.clonesReady], revision: i.revision, current: i.revision !== undefined && i.revision === wanted.get(cellOf(i.address)), ...(i.reason !== undefined ? { reason: i.reason } : {}) })),
        rollbacks: a.cells.flatMap(c => c.rollback == null ? [] : [{ cell: c.name, revision: c.rollback.revision, error: c.rollback.error, at: Number(c.rollback.at) }]),
        autoscale: a.cells.flatMap(c => c.autoscale == null ? [] : [{ cell: c.name, min: c.autoscale.min, max: c.autoscale.max, lag: c.autoscale.lag, replicas: c.replicas }])
      }
    })
  }
}
