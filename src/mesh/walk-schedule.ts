// When discovery's next random walk is due, in discovery ticks. While the mesh changes, a
// walk every `everyTicks` ticks. Once it is quiet, each walk doubles the gap to the next,
// up to `maxEveryTicks`: in a settled mesh every walk meets the same peers, and the walks
// (DHT queries: new streams, peer store writes on both ends) were the biggest timer cost of
// an idle node after the raft beacons. A newcomer still finds everyone: its own walks
// start fast, and the peers it dials discover it and walk fast again (changed()); a lost
// connection makes them walk fast again too.
export class WalkSchedule {
  private gap: number
  private next = 1

  constructor (private readonly everyTicks: number, private readonly maxEveryTicks: number) {
    this.gap = everyTicks
  }

  /** at discovery tick `tick` (counting from 1): walk now? `quiet`: nothing changed for a while */
  due (tick: number, quiet: boolean): boolean {
    if (tick < this.next) return false
    this.gap = quiet ? Math.min(this.maxEveryTicks, this.gap * 2) : this.everyTicks
    this.next = tick + this.gap
    return true
  }

  /** the mesh changed (a peer was discovered, a connection lost): walk at the next tick, then every `everyTicks` again */
  changed (tick: number): void {
    this.gap = this.everyTicks
    this.next = Math.min(this.next, tick + 1)
  }
}
