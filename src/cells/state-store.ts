// Persists each cell's last state snapshot in the node's data dir (atomic write + fsync).
// Write-behind: no reply waits for these files (the node's durability levels are the clone
// service's, topology/clones.ts), so a write starts only after a pause, behind the reply
// that produced the state, and the states of that pause share it: at most one write per
// cell in flight, always of the latest state.
import { readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { mkdirDurable, writeFileAtomic } from '../util/atomic-file.js'

export interface StoredState {
  address: string
  /** bundle hash the state was produced by */
  hash: string
  version: number
  /** JSON text of the state */
  state: string
}

export class CellStateStore {
  private readonly dir: string
  private readonly latest = new Map<string, StoredState>()
  private readonly writing = new Map<string, Promise<void>>()
  private ready: Promise<unknown> | undefined

  /** `writeDelayMs`: the pause before each write (default 100) */
  constructor (dataDir: string, private readonly writeDelayMs = 100) {
    this.dir = join(dataDir, 'cells')
  }

  private file (address: string): string {
    return join(this.dir, `${encodeURIComponent(address)}.json`)
  }

  /** Queue the state for writing; the returned promise settles once it (or a newer one) is on disk. */
  save (entry: StoredState): Promise<void> {
    this.latest.set(entry.address, entry)
    const inFlight = this.writing.get(entry.address)
    if (inFlight !== undefined) return inFlight
    const run = (async () => {
      this.ready ??= mkdirDurable(this.dir)
      await this.ready
      while (this.latest.has(entry.address)) {
        await new Promise(resolve => setTimeout(resolve, this.writeDelayMs))
        const next = this.latest.get(entry.address)
        if (next === undefined) break
        this.latest.delete(entry.address)
        await writeFileAtomic(this.file(entry.address), JSON.stringify(next))
      }
    })().finally(() => { this.writing.delete(entry.address) })
    this.writing.set(entry.address, run)
    return run
  }

  async load (address: string): Promise<StoredState | undefined> {
    let text: string
    try {
      text = await readFile(this.file(address), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    const parsed = JSON.parse(text) as StoredState
    if (parsed.address !== address || typeof parsed.state !== 'string' || typeof parsed.version !== 'number') throw new Error(`state file of ${address} is corrupt`)
    return parsed
  }

  async remove (address: string): Promise<void> {
    // a queued write is dropped; one already writing finishes before the file goes
    this.latest.delete(address)
    await this.writing.get(address)
    await unlink(this.file(address)).catch(() => {})
  }

  /** Wait for every queued write. */
  async flush (): Promise<void> {
    while (this.writing.size > 0) await Promise.allSettled([...this.writing.values()])
  }
}
