// How much of a node an app's cells hold. SPEC §4: isolated-vm's memoryLimit is a
// guideline (hostile code reaches 2–3× it), so each cell counts against the node's
// contributed memory as `memoryHeadroom × memory limit`, plus one cell-host process
// footprint per app per node. A clone is a live isolate too and counts like its primary.
import type { Amount, NodeCapacity, PeerId } from './types.js'

export interface AccountingRule {
  /** factor applied to each cell's memory limit */
  memoryHeadroom: number
  /** bytes per app per node for the cell host process itself */
  hostFootprint: number
}

export const defaultAccounting: AccountingRule = { memoryHeadroom: 2, hostFootprint: 40 * 2 ** 20 }

/** Which node holds an instance's primary (null = pending) and its clones. */
export interface InstancePlacement {
  primary: PeerId | null
  clones: PeerId[]
}

/** cell name → instances by replica index */
export type Placement = Record<string, InstancePlacement[]>

export interface DesiredCell {
  replicas: number
  clones: number
  /** isolate memory limit, bytes */
  memory: number
}

/** what placement needs of an app; an AppManifest satisfies it */
export interface DesiredApp {
  app: string
  cells: Record<string, DesiredCell>
}

export function cellCost (rule: AccountingRule, memoryLimit: number): number {
  return Math.ceil(memoryLimit * rule.memoryHeadroom)
}

/** Memory and cells that `cells` (of any apps) hold on one node: each its cost and a slot, plus one host footprint per app. */
export function cellsUsage (cells: Array<{ app: string, memory: number }>, rule: AccountingRule = defaultAccounting): Amount {
  const apps = new Set(cells.map(c => c.app))
  return { memory: cells.reduce((sum, c) => sum + cellCost(rule, c.memory), 0) + apps.size * rule.hostFootprint, cells: cells.length }
}

/** Memory and cells the app's placement holds on each node (nodes without any are absent). */
export function appUsage (desired: DesiredApp, placement: Placement, rule: AccountingRule = defaultAccounting): Map<PeerId, Amount> {
  const usage = new Map<PeerId, Amount>()
  const add = (node: PeerId, memory: number): void => {
    const u = usage.get(node) ?? { memory: rule.hostFootprint, cells: 0 }
    u.memory += memory
    u.cells += 1
    usage.set(node, u)
  }
  for (const [cell, instances] of Object.entries(placement)) {
    const spec = desired.cells[cell]
    if (spec === undefined) continue
    const cost = cellCost(rule, spec.memory)
    for (const inst of instances) {
      if (inst.primary !== null) add(inst.primary, cost)
      for (const c of inst.clones) add(c, cost)
    }
  }
  return usage
}

/** What a node offers one app: its contribution minus what other apps reserved on it. */
export function capacityFor (node: NodeCapacity, reservedByOthers: Amount | undefined): Amount {
  return {
    memory: node.contributed.memory - (reservedByOthers?.memory ?? 0),
    cells: node.contributed.cells - (reservedByOthers?.cells ?? 0)
  }
}
