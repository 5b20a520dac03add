// Spreads a cell's requests over its replicas: the replica with the fewest requests in
// flight from this gateway wins, ties go round-robin so equal replicas share the load.

export class ReplicaBalancer {
  private readonly outstanding = new Map<string, number[]>()
  private readonly cursor = new Map<string, number>()

  /** Picks a replica in [0, replicas), avoiding `avoid` (a replica that just failed) when another exists. */
  pick (app: string, cell: string, replicas: number, avoid?: number): number {
    if (replicas <= 1) return 0
    const key = keyOf(app, cell)
    const counts = this.counts(key, replicas)
    const start = (this.cursor.get(key) ?? 0) % replicas
    let best = -1
    for (let step = 0; step < replicas; step++) {
      const i = (start + step) % replicas
      if (i === avoid) continue
      if (best === -1 || counts[i] < counts[best]) best = i
    }
    this.cursor.set(key, (best + 1) % replicas)
    return best
  }

  /** Counts a request in flight on a replica; call the returned function once when it ends. */
  begin (app: string, cell: string, instance: number): () => void {
    const counts = this.counts(keyOf(app, cell), instance + 1)
    counts[instance]++
    let done = false
    return () => {
      if (done) return
      done = true
      counts[instance]--
    }
  }

  inFlight (app: string, cell: string, instance: number): number {
    return this.outstanding.get(keyOf(app, cell))?.[instance] ?? 0
  }

  /** Drops an app's counters (when the app is removed). */
  forgetApp (app: string): void {
    for (const key of [...this.outstanding.keys()]) {
      if (key.startsWith(`${app}/`)) {
        this.outstanding.delete(key)
        this.cursor.delete(key)
      }
    }
  }

  private counts (key: string, size: number): number[] {
    let counts = this.outstanding.get(key)
    if (counts == null) {
      counts = []
      this.outstanding.set(key, counts)
    }
    while (counts.length < size) counts.push(0)
    return counts
  }
}

function keyOf (app: string, cell: string): string {
  return `${app}/${cell}`
}
