// The node's last guard on what it contributes: whatever the app leaders decide (their
// reservations may have missed each other if gossip was cut), a transform that would take
// this node past its contributed cells or memory is refused with a clear error. Cells are
// counted like placement counts them (placement-accounting.ts): memory limit × headroom,
// plus one cell-host footprint per app.
import type { AdmissionRequest } from '../cells/index.js'
import type { Resources } from '../mesh/capacity.js'
import { cellsUsage, defaultAccounting } from '../topology/placement-accounting.js'
import type { AccountingRule } from '../topology/placement-accounting.js'
import { formatSize } from '../util/units.js'

/** Why this node cannot run the requested cell besides the others, or undefined. */
export function contributionProblem (request: AdmissionRequest, contributed: Resources, rule: AccountingRule = defaultAccounting): string | undefined {
  const cells = [...request.running, request.cell]
  if (cells.length > contributed.cells) {
    return `this node contributes ${contributed.cells} cell${contributed.cells === 1 ? '' : 's'} and already runs or starts ${request.running.length}`
  }
  const { memory } = cellsUsage(cells, rule)
  if (memory > contributed.memory) {
    return `its cells would need ${formatSize(memory)} (memory limits × ${rule.memoryHeadroom} plus ${formatSize(rule.hostFootprint)} per app) of the ${formatSize(contributed.memory)} this node contributes`
  }
  return undefined
}

/** The cell runtime's `admit` hook for a node contributing `contributed()`. */
export function createContributionGuard (contributed: () => Resources, rule: AccountingRule = defaultAccounting): (request: AdmissionRequest) => void {
  return request => {
    const problem = contributionProblem(request, contributed(), rule)
    if (problem !== undefined) throw new Error(problem)
  }
}
