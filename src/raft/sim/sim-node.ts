// One simulated server: a RawNode over a SimDisk (a MemoryLogStorage, or the disk WAL on a
// simulated file system) and a KvMachine. What the disk made durable before a crash
// survives it; everything else (the core's unstable state, a Ready taken but not yet
// persisted, the state machine) is lost and rebuilt from the disk on restart. A Ready is
// handled either at once (drain) or asynchronously (take … complete) with messages stepped
// in between, as a host that persists in the background does. The disk's calls settle at
// once, so awaiting them keeps the simulation deterministic.
import { EntryType } from '../types.js'
import type { ConfState, Entry, LogStorage, Message, NodeId, ReadState, Ready } from '../types.js'
import { RawNode } from '../core/raw-node.js'
import type { RawNodeConfig } from '../core/raw-node.js'
import { decodeConfChange } from '../core/conf-change-codec.js'
import { KvMachine, decodeCommand } from './kv-machine.js'
import type { SimDisk } from './sim-disk.js'

export interface SimNodeHooks {
  /** `node` just took a Ready out of its core (its in-memory state is the Ready's) */
  taken: (node: SimNode, rd: Ready) => void
  /** entries were just persisted by `node` */
  persisted: (node: SimNode, rd: Ready) => void
  send: (node: SimNode, m: Message) => void
  applied: (node: SimNode, e: Entry) => void
  restored: (node: SimNode, index: number, term: number) => void
  /** `node` just recovered its log from its disk (before restoring its state machine) */
  recovered: (node: SimNode) => void
  readState: (node: SimNode, rs: ReadState) => void
  /** crash the node after it persisted this Ready but before it sent or applied anything? */
  crashMidReady: (rd: Ready) => boolean
  /** `node` just crashed (what it had not made durable is gone) */
  crashed: (node: SimNode, why: string) => void
}

export type NodeOptions = Omit<RawNodeConfig, 'id' | 'storage' | 'peers' | 'applied' | 'rand'>

export class SimNode {
  raw: RawNode | undefined
  kv = new KvMachine()
  conf: ConfState = { voters: [], learners: [] }
  applied = 0
  /** a Ready taken but not yet persisted (asynchronous mode: the node keeps stepping meanwhile) */
  pending: Ready | undefined

  constructor (readonly id: NodeId, readonly disk: SimDisk, private readonly founders: NodeId[] | undefined, private readonly options: NodeOptions, private readonly rand: () => number) {}

  get alive (): boolean {
    return this.raw !== undefined
  }

  get storage (): LogStorage {
    return this.disk.storage
  }

  /** Recovers from the disk and starts; false if the disk lost power meanwhile or could not recover (the node stays down). */
  async start (hooks: SimNodeHooks): Promise<boolean> {
    const opened = this.disk.open()
    if (!await this.survives(opened, hooks) || !await opened) return false
    hooks.recovered(this)
    const snap = this.storage.snapshot()
    this.kv = KvMachine.decode(snap.data)
    this.conf = { voters: [...snap.metadata.conf.voters], learners: [...snap.metadata.conf.learners] }
    this.applied = snap.metadata.index
    hooks.restored(this, snap.metadata.index, snap.metadata.term)
    this.raw = new RawNode({ ...this.options, id: this.id, storage: this.storage, rand: this.rand, peers: this.founders, applied: this.applied })
    return true
  }

  crash (hooks: SimNodeHooks, why: string): void {
    this.raw = undefined
    this.pending = undefined // never persisted
    this.disk.crash()
    hooks.crashed(this, why)
  }

  /** Handles every Ready at once: persist, send, apply, advance. */
  async drain (hooks: SimNodeHooks): Promise<void> {
    for (let guard = 0; this.take(hooks); guard++) {
      if (guard > 10_000) throw new Error(`sim: ${this.id} never runs out of Ready`)
      await this.complete(hooks)
    }
  }

  /** Takes the next Ready, if there is one and none is pending; true if taken. */
  take (hooks: SimNodeHooks): boolean {
    if (this.raw === undefined || this.pending !== undefined || !this.raw.hasReady()) return false
    this.pending = this.raw.ready()
    hooks.taken(this, this.pending)
    return true
  }

  /** Persists, sends and applies the pending Ready, then advances (unless the disk lost power meanwhile: a crash). */
  async complete (hooks: SimNodeHooks): Promise<void> {
    const raw = this.raw
    const rd = this.pending
    if (raw === undefined || rd === undefined) return
    if (!await this.survives(this.disk.persist(rd), hooks)) return
    hooks.persisted(this, rd)
    if (hooks.crashMidReady(rd)) {
      this.crash(hooks, 'mid-Ready')
      return
    }
    for (const m of rd.messages) hooks.send(this, m)
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata
      this.kv = KvMachine.decode(rd.snapshot.data)
      this.conf = { voters: [...md.conf.voters], learners: [...md.conf.learners] }
      this.applied = md.index
      hooks.restored(this, md.index, md.term)
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.applied) continue
      if (e.type === EntryType.ConfChange) {
        this.conf = raw.applyConfChange(decodeConfChange(e.data))
        this.disk.setConfState(this.conf)
      } else if (e.data.length > 0) {
        this.kv.apply(decodeCommand(e.data))
      }
      this.applied = e.index
      hooks.applied(this, e)
    }
    for (const rs of rd.readStates) hooks.readState(this, rs)
    this.pending = undefined
    raw.advance()
  }

  /** Snapshots the state machine at the applied index and drops the log before it, keeping `keep` entries. */
  async compact (keep: number, hooks: SimNodeHooks): Promise<void> {
    if (this.applied <= this.storage.snapshot().metadata.index) return
    await this.survives(this.disk.snapshot(this.applied, this.conf, this.kv.encode(), this.applied - keep), hooks)
  }

  /** Awaits a disk call; if the disk lost power during it, the node crashes here (false). */
  private async survives (call: Promise<unknown>, hooks: SimNodeHooks): Promise<boolean> {
    try {
      await call
      return true
    } catch (err) {
      if (!this.disk.poweredOff) throw err
      this.crash(hooks, `disk lost power: ${(err as Error).message}`)
      return false
    }
  }
}
