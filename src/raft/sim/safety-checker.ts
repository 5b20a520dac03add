// Raft's safety properties, checked incrementally as the simulation runs:
// - election safety: at most one leader per term;
// - log matching: entries with the same index and term hold the same data and follow
//   the same previous term (so, inductively, identical prefixes);
// - leader completeness: a new leader's log holds every entry committed so far;
// - state-machine safety: no two nodes apply different entries at one index, and each
//   node applies indexes in order without gaps;
// - committed entries are never lost (a consequence of the above, checked at elections
//   and again at the end of a seed).
import type { Entry, NodeId } from '../types.js'

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

interface LoggedEntry {
  data: Uint8Array
  prevTerm: number
}

export class SafetyChecker {
  readonly violations: string[] = []
  private readonly leaders = new Map<number, NodeId>()
  /** index -> term -> what an entry with that index and term holds */
  private readonly logged = new Map<number, Map<number, LoggedEntry>>()
  /** index -> the committed (applied somewhere) entry */
  private readonly committed = new Map<number, Entry>()
  maxCommitted = 0
  private readonly appliedBy = new Map<NodeId, number>()
  /** term -> the highest index known committed by then */
  private readonly committedInTerm = new Map<number, number>()

  private fail (what: string): void {
    this.violations.push(what)
  }

  onLeader (id: NodeId, term: number, termAt: (index: number) => number, firstIndex: number, lastIndex: number): void {
    const other = this.leaders.get(term)
    if (other !== undefined && other !== id) this.fail(`election safety: ${other} and ${id} both lead term ${term}`)
    this.leaders.set(term, id)
    // entries known committed in terms before this one must all be in its log
    let c = 0
    for (const [t, index] of this.committedInTerm) if (t < term && index > c) c = index
    if (c === 0 || c < firstIndex - 1) return // covered by the leader's snapshot
    const want = this.committed.get(c)!.term
    if (lastIndex < c || termAt(c) !== want) {
      this.fail(`leader completeness: ${id} leads term ${term} without committed entry ${c} (term ${want}); its last index ${lastIndex}, term there ${termAt(c)}`)
    }
  }

  /** Entries a node just persisted; prevTerm(i) is its log's term at i (undefined when compacted). */
  onPersist (id: NodeId, entries: Entry[], prevTerm: (index: number) => number | undefined): void {
    for (const e of entries) {
      const pt = prevTerm(e.index - 1)
      let byTerm = this.logged.get(e.index)
      if (byTerm === undefined) this.logged.set(e.index, byTerm = new Map())
      const seen = byTerm.get(e.term)
      if (seen === undefined) {
        if (pt !== undefined) byTerm.set(e.term, { data: e.data, prevTerm: pt })
        continue
      }
      if (!sameBytes(seen.data, e.data)) this.fail(`log matching: ${id} holds a different entry at index ${e.index} term ${e.term}`)
      else if (pt !== undefined && seen.prevTerm !== pt) this.fail(`log matching: ${id} has term ${pt} before ${e.index}/${e.term}, another node has ${seen.prevTerm}`)
    }
  }

  /**
   * A node persisted a snapshot at `snapIndex`: whatever log it kept past the snapshot must
   * still chain onto it as it did where those entries were first logged (a kept suffix that
   * conflicts with the snapshot would make the node vote as if it held stale entries).
   */
  onPersistSnapshot (id: NodeId, snapIndex: number, lastIndex: number, termAt: (index: number) => number): void {
    this.checkChain(`after installing a snapshot at ${snapIndex}, ${id}`, snapIndex, lastIndex, termAt)
  }

  /** A node restarted from its storage: the log it recovered must chain as it did where its entries were first logged. */
  onRecover (id: NodeId, offset: number, lastIndex: number, termAt: (index: number) => number): void {
    this.checkChain(`after a restart, ${id}`, offset, lastIndex, termAt)
  }

  private checkChain (who: string, offset: number, lastIndex: number, termAt: (index: number) => number): void {
    for (let i = offset + 1; i <= lastIndex; i++) {
      const t = termAt(i)
      const seen = this.logged.get(i)?.get(t)
      const before = termAt(i - 1)
      if (seen !== undefined && seen.prevTerm !== before) {
        this.fail(`log matching: ${who} keeps ${i}/${t} after term ${before}; it was logged after term ${seen.prevTerm}`)
        return
      }
    }
  }

  /**
   * A node applied a committed entry while at `term` (the entry was committed in that
   * term or earlier, so leaders of later terms must hold it).
   */
  onApply (id: NodeId, e: Entry, term: number): void {
    this.committedInTerm.set(term, Math.max(this.committedInTerm.get(term) ?? 0, e.index))
    const last = this.appliedBy.get(id) ?? 0
    if (e.index !== last + 1) this.fail(`state machine safety: ${id} applied index ${e.index} after ${last}`)
    this.appliedBy.set(id, e.index)
    const prev = this.committed.get(e.index)
    if (prev === undefined) {
      this.committed.set(e.index, e)
      if (e.index > this.maxCommitted) this.maxCommitted = e.index
      return
    }
    if (prev.term !== e.term || !sameBytes(prev.data, e.data)) {
      this.fail(`state machine safety: ${id} applied ${e.index}/${e.term}, another node applied ${prev.index}/${prev.term} there`)
    }
  }

  /** A node's state machine was reset to a snapshot at `index` (restart or install). */
  onRestore (id: NodeId, index: number, term: number): void {
    const c = this.committed.get(index)
    if (c !== undefined && c.term !== term) this.fail(`state machine safety: ${id} restored a snapshot at ${index}/${term}, committed there is term ${c.term}`)
    this.appliedBy.set(id, index)
  }

  /** At the end, once the group converged: every voter holds every committed entry (in its log or snapshot). */
  checkNotLost (voters: Array<{ id: NodeId, termAt: (i: number) => number, firstIndex: number }>): void {
    const c = this.maxCommitted
    if (c === 0) return
    const want = this.committed.get(c)!.term
    for (const v of voters) {
      if (c >= v.firstIndex - 1 && v.termAt(c) !== want) this.fail(`committed entry ${c} (term ${want}) is missing on ${v.id} (term there ${v.termAt(c)})`)
    }
  }
}
