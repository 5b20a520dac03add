// A synchronous in-memory network of RawNodes for the paper-scenario unit tests (after
// etcd's raft_test network): messages are delivered in order until none are left, a
// filter may drop any of them, and every Ready is persisted, sent and applied at once.
import { MemoryLogStorage, RawNode, createRand, decodeConfChange } from '../../src/raft/core/index.js'
import type { RawNodeConfig } from '../../src/raft/core/index.js'
import { EntryType, StateRole } from '../../src/raft/types.js'
import type { Entry, Message, NodeId, ReadState } from '../../src/raft/types.js'

export interface TestMember {
  raw: RawNode
  storage: MemoryLogStorage
  applied: Entry[]
  readStates: ReadState[]
  sent: Message[]
}

export type Options = Partial<Omit<RawNodeConfig, 'id' | 'storage' | 'rand'>>

/** Log entries with the given terms at indexes 1, 2, … */
export function entriesWithTerms (terms: number[]): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, type: EntryType.Normal, data: new TextEncoder().encode(`${i + 1}@${term}`) }))
}

export class TestNet {
  readonly members = new Map<NodeId, TestMember>()
  /** return false to drop a message */
  filter: (m: Message) => boolean = () => true
  /** may change a message in flight */
  rewrite: (m: Message) => Message = m => m
  readonly delivered: Message[] = []
  private seed = 1

  /** `logs`: per member, the terms of its initial log (index 1 on) and its current term */
  constructor (readonly voters: NodeId[], private readonly options: Options = {}, logs: Record<NodeId, { log: number[], term?: number }> = {}) {
    for (const id of voters) this.add(id, logs[id]?.log, logs[id]?.term)
    this.settle() // bootstrap entries are applied before anything else happens
  }

  /** Adds a member with an optional initial log and term (its persisted state). */
  add (id: NodeId, log: number[] = [], term = 0, conf: { voters: NodeId[], learners: NodeId[] } = { voters: this.voters, learners: [] }, options: Options = {}): TestMember {
    // with `peers`, members bootstrap their configuration into the log instead
    const storage = new MemoryLogStorage(this.options.peers === undefined ? conf : undefined)
    storage.append(entriesWithTerms(log))
    if (term > 0 || log.length > 0) storage.setHardState({ term: Math.max(term, log.at(-1) ?? 0), vote: '', commit: 0 })
    const peers = this.voters.includes(id) ? this.options.peers : undefined
    const raw = new RawNode({ ...this.options, ...options, peers, id, storage, rand: createRand(this.seed++) })
    const member: TestMember = { raw, storage, applied: [], readStates: [], sent: [] }
    this.members.set(id, member)
    return member
  }

  get (id: NodeId): TestMember {
    const m = this.members.get(id)
    if (m === undefined) throw new Error(`no member ${id}`)
    return m
  }

  /** Persists, applies and collects the messages of every pending Ready of `id`. */
  private drain (id: NodeId): Message[] {
    const m = this.get(id)
    const out: Message[] = []
    while (m.raw.hasReady()) {
      const rd = m.raw.ready()
      if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot)
      m.storage.append(rd.entries)
      if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState)
      out.push(...rd.messages)
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) m.raw.applyConfChange(decodeConfChange(e.data))
        m.applied.push(e)
      }
      m.readStates.push(...rd.readStates)
      m.raw.advance()
    }
    m.sent.push(...out)
    return out
  }

  /** Delivers messages (and everything they cause) until the network is quiet. */
  settle (initial: Message[] = []): void {
    let queue = [...initial]
    for (const id of this.members.keys()) queue.push(...this.drain(id))
    for (let rounds = 0; queue.length > 0; rounds++) {
      if (rounds > 100_000) throw new Error('test network never settles')
      const next: Message[] = []
      for (const sent of queue) {
        if (!this.filter(sent)) continue
        const msg = this.rewrite(sent)
        const to = this.members.get(msg.to)
        if (to === undefined) continue
        this.delivered.push(msg)
        to.raw.step(msg)
        next.push(...this.drain(msg.to))
        if (msg.snapshot !== undefined && this.members.has(msg.from)) {
          // the transport reports a delivered snapshot
          this.get(msg.from).raw.reportSnapshot(msg.to, true)
          next.push(...this.drain(msg.from))
        }
      }
      queue = next
    }
  }

  tick (id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.get(id).raw.tick()
      this.settle()
    }
  }

  tickAll (n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) m.raw.tick()
      this.settle()
    }
  }

  campaign (id: NodeId): void {
    this.get(id).raw.campaign()
    this.settle()
  }

  propose (id: NodeId, text: string): void {
    this.get(id).raw.propose(new TextEncoder().encode(text))
    this.settle()
  }

  /** Drops everything to and from the given nodes. */
  isolate (...ids: NodeId[]): void {
    this.filter = m => !ids.includes(m.from) && !ids.includes(m.to)
  }

  heal (): void {
    this.filter = () => true
  }

  role (id: NodeId): StateRole {
    return this.get(id).raw.status().role
  }

  leader (): NodeId | undefined {
    return [...this.members.keys()].find(id => this.role(id) === StateRole.Leader)
  }

  /** The terms of a member's log, index 1 on (persisted or not). */
  logTerms (id: NodeId): number[] {
    const st = this.get(id).raw.status()
    const out: number[] = []
    for (let i = st.firstIndex; i <= st.lastIndex; i++) out.push(this.get(id).raw.term(i))
    return out
  }

  appliedTexts (id: NodeId): string[] {
    return this.get(id).applied.filter(e => e.type === EntryType.Normal && e.data.length > 0).map(e => new TextDecoder().decode(e.data))
  }
}
