// What this node advertises as free: its contribution minus what is placed here, counted
// as placement and the contribution guard count it (placement-accounting.ts): each running
// cell and each held clone its memory limit × headroom and one cell slot, plus one
// cell-host footprint per app. `stem status`, `stem peers` and the dashboard show it.
import type { Mesh } from '../mesh/mesh.js'
import type { Resources } from '../mesh/capacity.js'
import type { CellRuntime } from '../cells/runtime.js'
import type { CloneService } from '../topology/clones.js'
import { cellsUsage, defaultAccounting, type AccountingRule } from '../topology/placement-accounting.js'

export interface PlacedCell { address: string, app: string, memory: number }

/** `contributed` minus what `placed` holds; never below zero (a contribution lowered under what runs) */
export function freeCapacity (contributed: Resources, placed: PlacedCell[], rule: AccountingRule = defaultAccounting): Resources {
  const used = cellsUsage(placed, rule)
  return { cpu: contributed.cpu, memory: Math.max(0, contributed.memory - used.memory), cells: Math.max(0, contributed.cells - used.cells) }
}

/** the cells placed on this node: its transformed instances and the clones it holds, each once */
export function placedCells (runtime: Pick<CellRuntime, 'cells'>, clones: Pick<CloneService, 'heldCells'>): PlacedCell[] {
  const placed = new Map<string, PlacedCell>()
  for (const c of clones.heldCells()) placed.set(c.address, c)
  for (const c of runtime.cells()) {
    if (c.status === 'transformed') placed.set(c.address, { address: c.address, app: c.app, memory: c.limits?.memory ?? 0 })
  }
  return [...placed.values()]
}

/** the runtime's events after which what is placed here may have changed */
const PLACEMENT_EVENTS = ['cell:started', 'cell:reverted', 'cell:crashed', 'cell:failed', 'cell:restarted'] as const

/** Keeps the advertised free capacity true to what is placed; returns its stop. */
export function trackFreeCapacity (mesh: Mesh, runtime: CellRuntime, clones: CloneService): () => void {
  let last = ''
  const recount = (): void => {
    const free = freeCapacity(mesh.capacity.contributed(), placedCells(runtime, clones))
    const key = JSON.stringify(free)
    // an advert only when it changed: setFree publishes one
    if (key === last && key === JSON.stringify(mesh.capacity.free())) return
    last = key
    mesh.capacity.setFree(free)
  }
  for (const event of PLACEMENT_EVENTS) runtime.addEventListener(event, recount)
  // the held clones (which have no events) and the contribution are looked at again before each heartbeat advert
  const unhook = mesh.capacity.beforeHeartbeat(recount)
  recount()
  return () => {
    unhook()
    for (const event of PLACEMENT_EVENTS) runtime.removeEventListener(event, recount)
  }
}
