// Delivery of stream records (SPEC §4 `onRecord`): on the node that runs a partition's
// primary, a pump per partition reads what each consumer has not acknowledged and asks the
// consumer instance assigned to it to apply the batch (RECORD_METHOD, handled by the
// isolate bootstrap: the cursor moves with the consumer's state), then acknowledges the last
// offset to the partition. Group mode: partition p goes to instance p mod replicas of the
// cell (replicas as declared, so a failover never moves it); broadcast: to every instance,
// each its own group `cell#i`. A delivery that is repeated (lost answer, failover of either
// side, a pump on the old and the new primary at once) is skipped by the consumer's cursor:
// the effect on its state is exactly once. When the replicas change (`stem scale`,
// autoscale) a partition may go to another instance: the partition keeps the instance it
// delivers to (`holder`), and before the first delivery to another one the pump asks the
// old one's cursor and acknowledges it, so the new instance starts after what the old one
// applied (an instance scaled away went with its state: the new one takes its records).
// Woken by each new state of the partition (an append or an ack), and retried after a
// pause when a consumer cannot be reached.
//
// A batch is sized by how long the consumer's onRecord took per record so far (the
// delivery's answer says, without the time the delivery spent on the way and in the
// consumer's state write), so that applying one takes about `deliveryMs`: a cell's call
// holds its cell host (every cell of the app on that node) until it returns, so a batch of
// slow records would hold the app's partitions there for seconds, or outlast the
// consumer's timeout, which crashes it (crashes count towards marking a cell failed). So
// the first delivery is small, and after a failed one the next carries one record, whose
// time sizes the batches after it.
//
// A record whose `onRecord` throws (or crashes its cell: a loop past the cell's timeout)
// maxAttempts times, delivered alone, goes to the stream's dead-letter stream
// `<stream>.dead` with the error (dead-letter.ts), and only once that append is durable
// is it acknowledged (skipped): nothing is lost. The append
// names the record's place (stream/partition/group, gen, offset), so one repeated after a
// failover or a lost answer is not appended again. A record of a dead-letter stream itself
// is only skipped, with a log line.
import { CURSOR_METHOD, RECORD_METHOD, PARTITION_MARK, partitionOfCell } from '../../cells/streams/partition.js'
import { MAX_READ } from '../../cells/streams/partition-code.js'
import { parseAddress } from '../../cells/address.js'
import { isCrash } from '../../cells/reply-meta.js'
import type { AppAnnouncement } from '../announcement.js'
import { deadLetterAppend, type DeadLetter } from './dead-letter.js'

export interface PumpDeps {
  /** an ask to a cell anywhere in the mesh, answered with the result's JSON (messaging's askJson, reply trailers split off) */
  ask: (address: string, method: string, args: unknown[], options: { deadline: number, signal: AbortSignal }) => Promise<unknown>
  /** whether this node runs the instance as its primary now */
  isLocalPrimary: (address: string) => boolean
  /** the app's latest announcement (declared replicas of the consumers) */
  announcement: (app: string) => AppAnnouncement | undefined
  log: (line: string) => void
}

export interface PumpOptions {
  /** ms before a failed delivery is tried again (default 500) */
  retryMs?: number
  /** ms a delivery may take (default 15000) */
  askTimeoutMs?: number
  /** records per delivery at most (default 64, at most MAX_READ) */
  batch?: number
  /** ms of the consumer's onRecord one delivery aims at (default 250): a consumer slow per record gets smaller batches */
  deliveryMs?: number
  /** deliveries of one record, alone, that the consumer refused, after which it goes to `<stream>.dead` and is skipped (default 3) */
  maxAttempts?: number
}

interface Consumer { cell: string, mode: 'group' | 'broadcast' }
interface ReadAnswer { gen: number, records: Array<[number, string | null, number, unknown]>, holder?: string | null }
interface Target { group: string, address: string }

/** records of a group's first delivery, before its consumer's time per record is known */
const FIRST_BATCH = 8

/** The consumer instances a partition delivers to: one per group. */
export function deliveryTargets (app: string, partition: number, consumers: readonly Consumer[], replicasOf: (cell: string) => number): Target[] {
  const out: Target[] = []
  for (const c of consumers) {
    const n = replicasOf(c.cell)
    if (n < 1) continue
    if (c.mode === 'group') out.push({ group: c.cell, address: `${app}/${c.cell}#${partition % n}` })
    else for (let i = 0; i < n; i++) out.push({ group: `${c.cell}#${i}`, address: `${app}/${c.cell}#${i}` })
  }
  return out
}

class PartitionPump {
  private running = false
  private again = false
  private timer: NodeJS.Timeout | undefined
  private consumers: Consumer[] | undefined
  /** group → [offset, refusals] of the record it keeps refusing */
  private readonly refused = new Map<string, [number, number]>()
  /** group → ms its consumer took per record, smoothed over its deliveries */
  private readonly msPerRecord = new Map<string, number>()
  /**
   * group → the last offset to deliver alone, one record at a time: after a batch its
   * consumer refused (threw, or crashed on), up to that batch's last, so the culprit is
   * found without failing again on the others (each crash counts towards marking the cell
   * failed); after a batch that failed otherwise (unreachable, its cell host gone), its first
   */
  private readonly singleUntil = new Map<string, number>()
  private readonly app: string
  private readonly stream: string
  private readonly partition: number

  constructor (readonly address: string, private readonly deps: PumpDeps, private readonly opts: Required<PumpOptions>, private readonly signal: AbortSignal) {
    const { app, cell } = parseAddress(address)
    const p = partitionOfCell(cell)
    this.app = app
    this.stream = p?.stream ?? cell
    this.partition = p?.partition ?? 0
  }

  kick (): void {
    if (this.running) { this.again = true; return }
    clearTimeout(this.timer)
    this.timer = undefined
    this.running = true
    this.run().catch((err: Error) => { this.deps.log(`stream ${this.stream}/${this.partition}: ${err.message}`) }).finally(() => { this.running = false })
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  private async run (): Promise<void> {
    do {
      this.again = false
      if (this.signal.aborted || !this.deps.isLocalPrimary(this.address)) return
      try {
        this.consumers ??= await this.ask(this.address, 'consumers', []) as Consumer[]
        const announced = this.deps.announcement(this.app)
        const targets = deliveryTargets(this.app, this.partition, this.consumers, cell => announced?.cells.find(c => c.name === cell)?.replicas ?? 0)
        for (const target of targets) if (await this.deliverOnce(target)) this.again = true
      } catch (err) {
        if (this.signal.aborted) return
        this.deps.log(`stream ${this.stream}/${this.partition}: delivery paused: ${(err as Error).message.split('\n')[0]}`)
        this.timer = setTimeout(() => { this.kick() }, this.opts.retryMs)
        this.timer.unref()
        return
      }
    } while (this.again)
  }

  /** One batch to one group; whether it delivered something (there may be more). */
  private async deliverOnce (target: Target): Promise<boolean> {
    const refused = this.refused.get(target.group)
    const batch = refused === undefined && !this.singleUntil.has(target.group) ? this.batchFor(target.group) : 1
    const read = await this.ask(this.address, 'read', [target.group, batch]) as ReadAnswer
    if (read.records.length === 0) return false
    // (a partition published before holders existed answers none: delivered as before, until published again)
    if (read.holder !== undefined && read.holder !== target.address) { await this.moveTo(target, read); return true }
    const last = read.records[read.records.length - 1][0]
    try {
      const answer = await this.ask(target.address, RECORD_METHOD, [this.stream, this.partition, read.gen, read.records])
      // (a consumer on an older Stem answers only the count: its batches stay whole)
      const ms = (answer as { ms?: unknown } | null)?.ms
      this.timed(target.group, typeof ms === 'number' && ms >= 0 ? ms / read.records.length : 0)
      if (last >= (this.singleUntil.get(target.group) ?? -1)) this.singleUntil.delete(target.group)
    } catch (err) {
      const first = read.records[0][0]
      if (!isCellError(err) && !isCrash(err)) {
        if (batch > 1) this.singleUntil.set(target.group, first)
        throw err
      }
      // the consumer's onRecord threw, or crashed its cell (past its timeout: the cell starts
      // again from its last state): find the record alone, dead-letter and skip it after
      // maxAttempts (before the crashes mark the cell failed)
      if (batch > 1) this.singleUntil.set(target.group, last)
      const count = refused !== undefined && refused[0] === first ? refused[1] + 1 : (batch === 1 ? 1 : 0)
      this.refused.set(target.group, [first, count])
      if (batch > 1 || count < this.opts.maxAttempts) throw err
      const message = (err as Error).message.split('\n')[0]
      const [offset, key, time, record] = read.records[0]
      const dead: DeadLetter = { stream: this.stream, partition: this.partition, offset, key, time, group: target.group, consumer: target.address, attempts: count, error: message, record }
      // durable in `<stream>.dead` before the skip; if it cannot be appended, the delivery pauses and is tried again
      const cells = this.deps.announcement(this.app)?.cells.map(c => c.name) ?? []
      const to = await deadLetterAppend(this.app, cells, dead, read.gen, async (address, method, args) => await this.ask(address, method, args))
      this.deps.log(`stream ${this.stream}/${this.partition}: ${target.address} refused record ${first} ${count} times: ${to !== undefined ? `moved to ${to.stream} offset ${to.offset}` : 'skipped'} (${message})`)
      this.refused.delete(target.group)
      await this.ask(this.address, 'ack', [target.group, first, read.gen])
      return true
    }
    this.refused.delete(target.group)
    await this.ask(this.address, 'ack', [target.group, last, read.gen])
    return true
  }

  /** records for the group's next delivery: about deliveryMs of its consumer's onRecord, at least one */
  private batchFor (group: string): number {
    const per = this.msPerRecord.get(group)
    if (per === undefined) return Math.min(FIRST_BATCH, this.opts.batch)
    if (per <= 0) return this.opts.batch
    return Math.max(1, Math.min(this.opts.batch, Math.floor(this.opts.deliveryMs / per)))
  }

  private timed (group: string, ms: number): void {
    const before = this.msPerRecord.get(group)
    this.msPerRecord.set(group, before === undefined ? ms : (before + ms) / 2)
  }

  /**
   * The group's records go to another instance than before (its cell scaled, or the
   * partition's first delivery): what the instance that had them applied is acknowledged
   * first, so the new one starts after it. An instance scaled away went with its state:
   * what it did not acknowledge goes to the new one. An old instance that cannot answer
   * pauses the delivery (tried again), as giving its records to another could apply them twice.
   */
  private async moveTo (target: Target, read: ReadAnswer): Promise<void> {
    const from = read.holder ?? null
    if (from !== null && this.instanceKept(from)) {
      const cursor = await this.ask(from, CURSOR_METHOD, [this.stream, this.partition]) as [number, number] | null
      if (cursor !== null && cursor[0] === read.gen && cursor[1] >= read.records[0][0]) await this.ask(this.address, 'ack', [target.group, cursor[1], read.gen])
    }
    await this.ask(this.address, 'hold', [target.group, target.address])
    if (from !== null) this.deps.log(`stream ${this.stream}/${this.partition}: group ${target.group} moves from ${from} to ${target.address}`)
  }

  /** whether the app still has the instance `address` (its cell's announced replicas) */
  private instanceKept (address: string): boolean {
    let parsed
    try { parsed = parseAddress(address) } catch { return false }
    const replicas = this.deps.announcement(this.app)?.cells.find(c => c.name === parsed.cell)?.replicas ?? 0
    return parsed.app === this.app && parsed.replica !== undefined && parsed.key === undefined && parsed.replica < replicas
  }

  private async ask (address: string, method: string, args: unknown[]): Promise<unknown> {
    return await this.deps.ask(address, method, args, { deadline: Date.now() + this.opts.askTimeoutMs, signal: this.signal })
  }
}

/** an error the cell's method threw (CellError, or MessagingError 'remote' carrying it), not a failure to deliver */
function isCellError (err: unknown): boolean {
  return err instanceof Error && (err as { cellError?: unknown }).cellError !== undefined
}

export interface StreamPump {
  /** a new state of a local instance (the runtime's 'cell:snapshot'): wakes its pump if it is a partition */
  onSnapshot: (address: string, state: string) => void
  stop: () => void
  /** partitions pumped from this node */
  readonly size: number
  /** the addresses of the partitions whose primary runs here now (their lag is this node's to export) */
  partitions: () => string[]
}

export function createStreamPump (deps: PumpDeps, options: PumpOptions = {}): StreamPump {
  const opts: Required<PumpOptions> = { retryMs: options.retryMs ?? 500, askTimeoutMs: options.askTimeoutMs ?? 15_000, batch: Math.min(options.batch ?? 64, MAX_READ), deliveryMs: options.deliveryMs ?? 250, maxAttempts: options.maxAttempts ?? 3 }
  const controller = new AbortController()
  const pumps = new Map<string, PartitionPump>()
  return {
    onSnapshot (address, state) {
      if (controller.signal.aborted || !state.startsWith(PARTITION_MARK)) return
      let pump = pumps.get(address)
      if (pump === undefined) {
        pump = new PartitionPump(address, deps, opts, controller.signal)
        pumps.set(address, pump)
      }
      pump.kick()
    },
    stop () {
      controller.abort()
      for (const pump of pumps.values()) pump.stop()
      pumps.clear()
    },
    get size () { return pumps.size },
    partitions: () => [...pumps.keys()].filter(address => deps.isLocalPrimary(address))
  }
}
