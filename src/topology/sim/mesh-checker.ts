// The invariants of the whole-mesh simulation, checked as it runs:
// - no acknowledged state is lost: an add acknowledged before another add was sent is in
//   the ledger that other add returns, and in the final ledger of its instance;
// - at most one primary acknowledges per instance and epoch;
// - no answer comes from a primary whose epoch was superseded (an older epoch answering
//   after a newer one did);
// - no instance starts blank while it has acknowledged state;
// - a node lost for good takes no acknowledged add with it: another node holds each one;
// - placements never give a node more cells than it contributes.
import type { Placement } from '../placement-accounting.js'

interface Ack {
  op: string
  epoch: number
  sentAt: number
  ackedAt: number
}

export class MeshChecker {
  readonly violations: string[] = []
  /** `${address}@${epoch}` → the node that acknowledged there */
  private readonly ackers = new Map<string, string>()
  private readonly maxAckedEpoch = new Map<string, number>()
  private readonly acks = new Map<string, Ack[]>()
  private readonly forgotten = new Map<string, number>()
  /** acknowledged adds that only a node gone for good held when it went (a violation, reported once there): no longer expected */
  private readonly givenUp = new Set<string>()
  acknowledged = 0
  /** how many acknowledged adds only a node gone for good held */
  lostWithNode = 0

  private fail (what: string): void {
    if (this.violations.length < 20) this.violations.push(what)
  }

  /** `address` was scaled away in `epoch`: its state is gone by design, and a later instance at that address starts afresh */
  forget (address: string, epoch: number): void {
    if ((this.forgotten.get(address) ?? -1) >= epoch) return
    this.forgotten.set(address, epoch)
    this.acks.delete(address)
  }

  onAck (address: string, epoch: number, node: string, op: string, ledger: string[], sentAt: number, now: number): void {
    this.acknowledged++
    if (epoch <= (this.forgotten.get(address) ?? -1)) return
    const key = `${address}@${epoch}`
    const other = this.ackers.get(key)
    if (other !== undefined && other !== node) this.fail(`two primaries: ${other} and ${node} both acknowledged ${address} in epoch ${epoch}`)
    this.ackers.set(key, node)
    const max = this.maxAckedEpoch.get(address) ?? 0
    if (epoch < max) this.fail(`superseded primary: ${node} acknowledged ${op} on ${address} in epoch ${epoch} after epoch ${max} answered`)
    else this.maxAckedEpoch.set(address, epoch)
    const have = new Set(ledger)
    const list = this.acks.get(address) ?? []
    for (const a of list) {
      if (a.ackedAt < sentAt && !have.has(a.op) && !this.givenUp.has(a.op)) this.fail(`lost: ${a.op} on ${address} (acknowledged at ${a.ackedAt} ms) is missing from what ${node} answered to ${op} in epoch ${epoch}`)
    }
    list.push({ op, epoch, sentAt, ackedAt: now })
    this.acks.set(address, list)
  }

  /** `node` is gone for good: an add of `address` none of the other nodes' `ledgers` holds went with it. */
  onGone (address: string, node: string, ledgers: string[][]): void {
    const held = new Set(ledgers.flat())
    const gone: string[] = []
    for (const a of this.acks.get(address) ?? []) {
      if (held.has(a.op) || this.givenUp.has(a.op)) continue
      this.givenUp.add(a.op)
      gone.push(a.op)
    }
    this.lostWithNode += gone.length
    if (gone.length > 0) this.fail(`lost with a node: ${node}, gone for good, alone held acknowledged ${gone.slice(0, 5).join(', ')}${gone.length > 5 ? ' …' : ''} of ${address}`)
  }

  /** A node starts `address` blank as its primary in `epoch` (a start in an epoch already superseded cannot lose anything by itself: its answers are checked above). */
  onBlankStart (address: string, epoch: number, node: string): void {
    const acked = this.acks.get(address)?.filter(a => a.epoch <= epoch && !this.givenUp.has(a.op)).length ?? 0
    if (acked > 0) this.fail(`blank start: ${node} started ${address} blank in epoch ${epoch} although ${acked} add(s) were acknowledged`)
  }

  onPlacement (placement: Placement, cellsOf: (node: string) => number): void {
    const used = new Map<string, number>()
    for (const instances of Object.values(placement)) {
      for (const inst of instances) for (const n of [inst.primary, ...inst.clones]) if (n !== null) used.set(n, (used.get(n) ?? 0) + 1)
    }
    for (const [n, count] of used) if (count > cellsOf(n)) this.fail(`oversubscribed: the placement puts ${count} cells on ${n}, which contributes ${cellsOf(n)}`)
  }

  /** At the end: the ledger each instance's primary holds must have every acknowledged add. */
  checkFinal (address: string, ledger: string[] | undefined): void {
    const list = (this.acks.get(address) ?? []).filter(a => !this.givenUp.has(a.op))
    if (list.length === 0) return
    if (ledger === undefined) {
      this.fail(`lost: ${address} has ${list.length} acknowledged add(s) and no primary after healing`)
      return
    }
    const have = new Set(ledger)
    const missing = list.filter(a => !have.has(a.op)).map(a => a.op)
    if (missing.length > 0) this.fail(`lost: after healing, ${address} misses acknowledged ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ' …' : ''}`)
  }

  addresses (): string[] {
    return [...this.acks.keys()]
  }
}
