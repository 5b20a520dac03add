// Failed cells are visible everywhere: this node advertises its instances that are not
// serving (reason and time) in its capacity adverts, logs crashes, restarts and failures
// with the cell's address, and every node's `stem cells` and dashboard show an instance as
// `failed` with its reason, as the node that runs it advertises it.
import type { Mesh } from '../mesh/mesh.js'
import type { InstanceCondition } from '../mesh/capacity.js'
import type { CellRuntime } from '../cells/runtime.js'
import type { AppCellsListing } from '../topology/app-table.js'
import type { Logger } from '../util/logger.js'

export interface CellConditions {
  /** the listing with each instance's condition from the node that runs it */
  overlay: (apps: AppCellsListing[]) => AppCellsListing[]
  /** the condition of `address` on `node`, if it is not serving */
  of: (address: string, node: string) => InstanceCondition | undefined
}

export function watchCellConditions (mesh: Mesh, runtime: CellRuntime, log: Logger): CellConditions {
  const own = (): Record<string, InstanceCondition> => {
    const out: Record<string, InstanceCondition> = {}
    for (const cell of runtime.cells()) {
      if (cell.status === 'failed') out[cell.address] = { state: 'failed', reason: cell.failure?.reason ?? 'failed', since: cell.failure?.at ?? Date.now() }
    }
    return out
  }
  const advertise = (): void => { mesh.capacity.setConditions(own()) }
  runtime.addEventListener('cell:crashed', e => { log.warn(`cell ${e.detail.address} crashed: ${e.detail.reason}`) })
  runtime.addEventListener('cell:restarted', e => { log.info(`cell ${e.detail.address} restarted (${e.detail.reason})`); advertise() })
  runtime.addEventListener('cell:failed', e => { log.error(`cell ${e.detail.address} failed: ${e.detail.reason}`); advertise() })
  runtime.addEventListener('cell:started', advertise)
  runtime.addEventListener('cell:reverted', advertise)
  runtime.addEventListener('host:crashed', e => { log.warn(`cell host of app ${e.detail.app} (pid ${String(e.detail.pid)}) ${e.detail.reason}`) })

  const of = (address: string, node: string): InstanceCondition | undefined =>
    node === mesh.peerId ? own()[address] : mesh.capacity.view.get(node)?.conditions[address]
  return {
    of,
    overlay: apps => apps.map(a => ({
      ...a,
      cells: a.cells.map(c => {
        const condition = of(c.address, c.node)
        return condition === undefined ? c : { ...c, state: condition.state, reason: condition.reason, since: condition.since }
      })
    }))
  }
}
