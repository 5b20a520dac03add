// The leader's controller loop compares the placement it wants with the copies that
// actually run and executes the steps planned here, wave by wave: every step of a wave
// may run in parallel; the next wave starts when the previous one finished (or is
// re-planned from the new actual state if something failed — planning is idempotent).
//
//   wave 0  promote  a clone whose instance lost its primary (failover first: least downtime)
//   wave 1  start    missing primaries and clones; a primary moving to a node without a
//                    copy first starts there as a clone, so it holds the state before it serves
//   wave 2  handover the old primary hands over to the warmed copy (then stops, or stays
//                    as a clone if the placement keeps one there)
//   wave 3… update   copies running an older revision (code, limits) or in the wrong role
//                    re-transform to the wanted role and revision, one instance of each
//                    cell at a time: its clones first, then its primary — a rolling update
//   last    stop     copies the placement no longer wants
import type { Placement } from './placement-accounting.js'
import { instanceAddress } from './types.js'
import type { PeerId } from './types.js'

export type Role = 'primary' | 'clone'

/** one running copy of an instance, as reported by the nodes */
export interface RunningCopy {
  cell: string
  index: number
  role: Role
  node: PeerId
  /** what it runs: e.g. sha256 of bundle + limits */
  revision: string
}

export interface ReconcileTarget {
  app: string
  placement: Placement
  /** cell → revision every copy should run */
  revisions: Record<string, string>
}

export type ReconcileStep =
  | { wave: number, kind: 'promote', address: string, node: PeerId }
  | { wave: number, kind: 'start' | 'update', address: string, node: PeerId, role: Role, revision: string }
  | { wave: number, kind: 'handover', address: string, from: PeerId, node: PeerId, keepAsClone: boolean }
  | { wave: number, kind: 'stop', address: string, node: PeerId, role: Role }

const firstUpdateWave = 3

export function planReconcile (target: ReconcileTarget, actual: RunningCopy[]): ReconcileStep[] {
  const steps: ReconcileStep[] = []
  const stops: Array<{ address: string, node: PeerId, role: Role }> = []
  const byInstance = new Map<string, RunningCopy[]>()
  for (const copy of actual) {
    const key = `${copy.cell}#${copy.index}`
    byInstance.set(key, [...(byInstance.get(key) ?? []), copy])
  }

  for (const cell of Object.keys(target.placement).sort()) {
    const revision = target.revisions[cell]
    if (revision === undefined) throw new Error(`no revision for cell ${cell}`)
    let updateWave = firstUpdateWave
    target.placement[cell].forEach((inst, index) => {
      const key = `${cell}#${index}`
      const address = instanceAddress(target.app, cell, index)
      const copies = (byInstance.get(key) ?? []).sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
      byInstance.delete(key)
      const on = (node: PeerId): RunningCopy | undefined => copies.find(c => c.node === node)
      const primaries = copies.filter(c => c.role === 'primary')
      const oldPrimary = primaries.find(c => c.node === inst.primary) ?? primaries[0]
      const wanted = new Set(inst.primary === null ? [] : [inst.primary, ...inst.clones])
      const handled = new Set<PeerId>()
      const updates: Array<{ node: PeerId, role: Role }> = []

      if (inst.primary !== null) {
        const dp = inst.primary
        const there = on(dp)
        if (there?.role === 'primary') {
          if (there.revision !== revision) updates.push({ node: dp, role: 'primary' })
        } else if (oldPrimary === undefined) {
          if (there !== undefined) {
            steps.push({ wave: 0, kind: 'promote', address, node: dp })
            if (there.revision !== revision) updates.push({ node: dp, role: 'primary' })
          } else {
            steps.push({ wave: 1, kind: 'start', address, node: dp, role: 'primary', revision })
          }
        } else {
          if (there === undefined) steps.push({ wave: 1, kind: 'start', address, node: dp, role: 'clone', revision })
          else if (there.revision !== revision) updates.push({ node: dp, role: 'primary' })
          const keepAsClone = inst.clones.includes(oldPrimary.node)
          steps.push({ wave: 2, kind: 'handover', address, from: oldPrimary.node, node: dp, keepAsClone })
          handled.add(oldPrimary.node)
          if (keepAsClone && oldPrimary.revision !== revision) updates.push({ node: oldPrimary.node, role: 'clone' })
        }
        handled.add(dp)
        for (const c of inst.clones) {
          if (handled.has(c)) continue
          handled.add(c)
          const copy = on(c)
          if (copy === undefined) steps.push({ wave: 1, kind: 'start', address, node: c, role: 'clone', revision })
          else if (copy.revision !== revision || copy.role !== 'clone') updates.push({ node: c, role: 'clone' })
        }
      }

      if (updates.length > 0) {
        for (const u of updates) {
          steps.push({ wave: u.role === 'clone' ? updateWave : updateWave + 1, kind: 'update', address, node: u.node, role: u.role, revision })
        }
        updateWave += 2
      }
      for (const copy of copies) {
        if (handled.has(copy.node) && wanted.has(copy.node)) continue
        if (copy === oldPrimary && handled.has(copy.node)) continue
        stops.push({ address, node: copy.node, role: copy.role })
      }
    })
  }
  for (const copies of byInstance.values()) {
    for (const copy of copies) stops.push({ address: instanceAddress(target.app, copy.cell, copy.index), node: copy.node, role: copy.role })
  }

  const stopWave = Math.max(firstUpdateWave, ...steps.map(s => s.wave + 1))
  for (const s of stops) steps.push({ wave: stopWave, kind: 'stop', ...s })
  return steps.sort((a, b) => a.wave - b.wave || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
}
