// Anti-replay sliding window over sequence numbers (as in IPsec, RFC 4303 §3.4.3): the
// highest sequence accepted so far plus a bitmap of which of the `size` numbers below it
// were seen. Anything at or below `highest - size` is too old to tell apart from a replay.
export type ReplayCheck = 'ok' | 'replayed' | 'too-old'

export class ReplayWindow {
  readonly size: number
  private highest = 0n
  private readonly bits: Uint32Array

  /** `size` is rounded up to a multiple of 32 */
  constructor (size = 1024) {
    this.size = Math.max(32, Math.ceil(size / 32) * 32)
    this.bits = new Uint32Array(this.size / 32)
  }

  /** Whether `seq` would be accepted, without recording it. */
  check (seq: bigint): ReplayCheck {
    if (seq > this.highest) return 'ok'
    if (this.highest - seq >= BigInt(this.size)) return 'too-old'
    return this.isSet(seq) ? 'replayed' : 'ok'
  }

  /** Record `seq` as seen; returns what `check` would have said (nothing is recorded unless 'ok'). */
  accept (seq: bigint): ReplayCheck {
    const verdict = this.check(seq)
    if (verdict !== 'ok') return verdict
    if (seq > this.highest) {
      const advance = seq - this.highest
      if (advance >= BigInt(this.size)) {
        this.bits.fill(0)
      } else {
        // clear the slots of the numbers the window slides over
        for (let s = this.highest + 1n; s < seq; s++) this.clear(s)
      }
      this.highest = seq
    }
    this.set(seq)
    return 'ok'
  }

  private slot (seq: bigint): number {
    return Number(seq % BigInt(this.size))
  }

  private isSet (seq: bigint): boolean {
    const i = this.slot(seq)
    return (this.bits[i >>> 5] & (1 << (i & 31))) !== 0
  }

  private set (seq: bigint): void {
    const i = this.slot(seq)
    this.bits[i >>> 5] |= 1 << (i & 31)
  }

  private clear (seq: bigint): void {
    const i = this.slot(seq)
    this.bits[i >>> 5] &= ~(1 << (i & 31))
  }
}
