// Copies an announcement no longer places on this node, kept for a while before they go
// (make before break). When an instance moves (its primary to another node, or a clone
// replaced), the new primary's clones may not hold its state yet: for a moment the
// acknowledged states are on the new primary alone, and on the copy here. Dropping it at
// once lost two acknowledged adds when the new primary's node was then lost for good
// (sim:mesh seed 6415). A kept copy takes no writes and confirms nothing (it is no clone);
// it only answers the leader's inventory and fetch, so that a recovery can start from it
// (or promote it, where the new placement puts the primary on this node).

/**
 * how long a copy is kept: past the recovery's 20 s bound and the time for the app's owner
 * to accept a loss (`stem restart --accept-loss`, which then starts from the newest copy)
 */
export const KEEP_DROPPED_MS = 5 * 60_000

export class KeptCopies<Copy> {
  private readonly copies = new Map<string, { copy: Copy, timer: NodeJS.Timeout }>()

  /** `expire` runs once `keepMs` have passed, unless the copy was taken or cleared before */
  constructor (private readonly keepMs: number, private readonly expire: (address: string) => void) {}

  keep (address: string, copy: Copy): void {
    this.delete(address)
    const timer = setTimeout(() => {
      this.copies.delete(address)
      this.expire(address)
    }, this.keepMs)
    timer.unref()
    this.copies.set(address, { copy, timer })
  }

  get (address: string): Copy | undefined {
    return this.copies.get(address)?.copy
  }

  /** Forgets the copy without expiring it (the instance is held here again, or its app is gone). */
  delete (address: string): boolean {
    const kept = this.copies.get(address)
    if (kept === undefined) return false
    clearTimeout(kept.timer)
    return this.copies.delete(address)
  }

  /** the kept copies of `app`'s instances, by address */
  ofApp (app: string): Array<[string, Copy]> {
    return [...this.copies].filter(([address]) => address.startsWith(`${app}/`)).map(([address, k]) => [address, k.copy])
  }

  clear (): void {
    for (const { timer } of this.copies.values()) clearTimeout(timer)
    this.copies.clear()
  }
}
