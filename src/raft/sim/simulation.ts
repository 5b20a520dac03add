// A deterministic simulation of one Raft group: everything (faults, timing, clients) is
// drawn from one seeded PRNG, so a seed replays exactly. Each seed runs a chaotic phase —
// message loss, duplication, delay and reordering, partitions (symmetric, asymmetric,
// bridge), crashes with restarts from persisted state, membership changes, leadership
// transfers, client writes and linearizable reads — then heals everything and requires
// a leader to commit a final proposal within a bounded number of ticks. With `storage:
// 'disk'` every node keeps its log in the real disk WAL on a simulated file system with
// storage faults (crash at any write, torn tails, bit flips: see sim-disk.ts, sim-fs.ts).
import { ConfChangeType, EntryType, StateRole } from '../types.js'
import type { ConfChange, Entry, Message, NodeId, ReadState, Ready } from '../types.js'
import { createRand } from '../core/rand.js'
import { InvalidMessageError } from '../core/raw-node.js'
import { ProposalDroppedError } from '../core/raft.js'
import { SimNode } from './sim-node.js'
import { MemorySimDisk, WalSimDisk } from './sim-disk.js'
import type { SimDisk } from './sim-disk.js'
import { NO_DISK_FAULTS, SimFs } from './sim-fs.js'
import type { NodeOptions, SimNodeHooks } from './sim-node.js'
import { SimNetwork, NO_FAULTS, partitionAtRandom } from './network.js'
import type { NetworkFaults } from './network.js'
import { SafetyChecker } from './safety-checker.js'
import { checkOperations, kvModel } from './linearizability.js'
import type { CheckResult, KvOperation } from './linearizability.js'
import { decodeCommand, encodeCommand } from './kv-machine.js'

export interface SeedResult {
  seed: number
  violations: string[]
  nodes: number
  ticks: number
  /** client operations in the checked history */
  operations: number
  committed: number
  linearizability: CheckResult
}

export interface SeedOptions {
  /** ticks of the chaotic phase (default: 200–500, drawn from the seed) */
  ticks?: number
  /** ticks allowed after healing for a leader to commit a final proposal */
  livenessTicks?: number
  /** called with a line per notable event (for replaying a failing seed) */
  trace?: (line: string) => void
  /** where nodes keep their logs: MemoryLogStorage (default) or the disk WAL on a faulty simulated disk */
  storage?: SimStorageKind
}

export type SimStorageKind = 'memory' | 'disk'

const ELECTION_TICK = 10
const KEYS = ['x', 'y', 'z']
const READ_TIMEOUT_TICKS = 4 * ELECTION_TICK
const MAX_PENDING_OPS = 6

interface PendingRead {
  node: SimNode
  key: string
  call: number
  tick: number
  index: number
}

export async function runSeed (seed: number, opts: SeedOptions = {}): Promise<SeedResult> {
  const rand = createRand(seed)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]
  const chance = (p: number): boolean => rand() < p
  const trace = opts.trace

  const size = 3 + Math.floor(rand() * 3)
  const founders = 3 + Math.floor(rand() * (size - 2))
  const ids: NodeId[] = Array.from({ length: size }, (_, i) => `n${i + 1}`)
  const options: NodeOptions = {
    electionTick: ELECTION_TICK,
    heartbeatTick: 1,
    preVote: chance(0.7),
    checkQuorum: chance(0.7),
    maxSizePerMsg: pick([64, 256, 4096]),
    maxInflightMsgs: pick([1, 2, 4, 16])
  }
  const faults: NetworkFaults = {
    loss: pick([0, 0.02, 0.1, 0.25]),
    duplicate: pick([0, 0.02, 0.1]),
    maxDelay: pick([0, 1, 2, 4]),
    longDelay: pick([0, 0.01, 0.05])
  }
  // a third of the seeds are storms: frequent crashes and partitions with small messages,
  // so that leaders often die with their entries on a minority (Raft's Figure 8)
  const storm = chance(0.35)
  if (storm) {
    options.maxSizePerMsg = 1 // one entry per append
    options.maxInflightMsgs = pick([1, 2])
  }
  const pCrash = storm ? pick([0.03, 0.06]) : pick([0, 0.005, 0.02])
  const pPartition = storm ? pick([0.03, 0.08]) : pick([0, 0.01, 0.03])
  const pConf = pick([0, 0.01, 0.03])
  const pTransfer = pick([0, 0.005, 0.02])
  const pCompact = pick([0, 0.01, 0.05]) + (opts.storage === 'disk' ? 0.1 : 0)
  const pMidReadyCrash = pick([0, 0.001])
  const pOp = pick([0.1, 0.3, 0.6])
  const asyncReady = chance(0.5)
  const ticks = opts.ticks ?? 200 + Math.floor(rand() * 300)
  const livenessTicks = opts.livenessTicks ?? 60 * ELECTION_TICK
  trace?.(`seed ${seed}: ${size} nodes, ${founders} founders, ${JSON.stringify(options)}, faults ${JSON.stringify(faults)}, storm ${storm} async ${asyncReady} crash ${pCrash} partition ${pPartition} conf ${pConf} transfer ${pTransfer} compact ${pCompact}`)

  const net = new SimNetwork<Message>(rand, faults, 4 * ELECTION_TICK)
  const checker = new SafetyChecker()
  const disks = opts.storage === 'disk' ? simulatedDisks(seed, ids, checker, trace) : undefined
  const nodes = new Map<NodeId, SimNode>()
  ids.forEach((id, i) => nodes.set(id, new SimNode(id, disks?.disks[i] ?? new MemorySimDisk(), i < founders ? ids.slice(0, founders) : undefined, options, createRand(seed * 7919 + i + 1))))
  const restartAt = new Map<NodeId, number>()

  let tick = 0
  let healed = false
  let clock = 0
  let opSeq = 0
  const history: KvOperation[] = []
  const pendingPuts = new Map<number, KvOperation>()
  const pendingReads = new Map<string, PendingRead>()
  let finalOp = -1
  const finalApplied = new Set<NodeId>()

  const termAt = (n: SimNode) => (i: number): number => n.raw!.term(i)

  const completeReads = (node: SimNode): void => {
    for (const [ctx, r] of pendingReads) {
      if (r.node === node && r.index > 0 && node.applied >= r.index) {
        pendingReads.delete(ctx)
        history.push({ input: { kind: 'get', key: r.key }, output: node.kv.get(r.key), call: r.call, return: ++clock })
      }
    }
  }

  const hooks: SimNodeHooks = {
    taken: (node: SimNode, rd: Ready) => {
      if (rd.softState?.role === StateRole.Leader) {
        const st = node.raw!.status()
        trace?.(`t${tick} ${node.id} leads term ${st.term} (last ${st.lastIndex}, commit ${st.commit})`)
        checker.onLeader(node.id, st.term, termAt(node), st.firstIndex, st.lastIndex)
      }
    },
    persisted: (node: SimNode, rd: Ready) => {
      const storageTerm = (i: number): number | undefined => {
        try {
          return node.storage.term(i)
        } catch {
          return undefined
        }
      }
      if (rd.snapshot !== undefined) checker.onPersistSnapshot(node.id, rd.snapshot.metadata.index, node.storage.lastIndex(), i => node.storage.term(i))
      if (rd.entries.length > 0) checker.onPersist(node.id, rd.entries, storageTerm)
    },
    send: (node: SimNode, m: Message) => {
      const delivered = net.send(m, tick)
      if (m.snapshot !== undefined) node.raw?.reportSnapshot(m.to, delivered)
    },
    applied: (node: SimNode, e: Entry) => {
      checker.onApply(node.id, e, node.raw!.status().term)
      if (e.data.length > 0 && e.type === EntryType.Normal) {
        const c = decodeCommand(e.data)
        const put = pendingPuts.get(c.op)
        if (put !== undefined) {
          put.return = ++clock
          pendingPuts.delete(c.op)
        }
        if (c.op === finalOp) finalApplied.add(node.id)
      }
      completeReads(node)
    },
    restored: (node: SimNode, index: number, term: number) => {
      checker.onRestore(node.id, index, term)
      completeReads(node)
    },
    readState: (node: SimNode, rs: ReadState) => {
      const r = pendingReads.get(ctxKey(rs.context))
      if (r === undefined || r.node !== node) return
      r.index = Math.max(1, rs.index)
      completeReads(node)
    },
    recovered: (node: SimNode) => {
      const st = node.storage
      checker.onRecover(node.id, st.firstIndex() - 1, st.lastIndex(), i => st.term(i))
    },
    crashMidReady: (rd: Ready) => {
      if (healed) return false
      // disk seeds: often a crash right after a snapshot install (what recovery makes of it)
      if (rd.snapshot !== undefined && disks !== undefined && disks.crashAfterInstall()) return true
      return pMidReadyCrash > 0 && chance(pMidReadyCrash)
    },
    crashed: (node: SimNode, why: string) => {
      trace?.(`t${tick} crash ${node.id} (${why})`)
      for (const [ctx, r] of pendingReads) if (r.node === node) pendingReads.delete(ctx)
    }
  }

  // a node handles its Readies either at once, or (asynchronous seeds) persists them later
  // while it keeps stepping messages, like a host that fsyncs in the background
  const handle = async (n: SimNode): Promise<void> => {
    if (!asyncReady) {
      await n.drain(hooks)
      return
    }
    n.take(hooks)
    if (chance(0.3)) await finish(n)
  }
  const finish = async (n: SimNode): Promise<void> => {
    await n.complete(hooks)
    n.take(hooks)
  }
  const finishSome = async (p: number): Promise<void> => {
    for (const n of nodes.values()) if (n.pending !== undefined && chance(p)) await finish(n)
  }
  const start = async (n: SimNode): Promise<void> => {
    if (await n.start(hooks)) await handle(n)
  }

  const alive = (): SimNode[] => [...nodes.values()].filter(n => n.alive)
  const leaderNode = (): SimNode | undefined => {
    let best: SimNode | undefined
    for (const n of alive()) {
      const st = n.raw!.status()
      if (st.role === StateRole.Leader && (best === undefined || st.term > best.raw!.status().term)) best = n
    }
    return best
  }

  const deliver = async (m: Message): Promise<void> => {
    const target = nodes.get(m.to)
    if (target?.raw === undefined) return
    try {
      target.raw.step(m)
    } catch (err) {
      if (err instanceof InvalidMessageError) checker.violations.push(`core sent a malformed message: ${err.message}`)
      else throw err
    }
    await handle(target)
  }

  const deliverDue = async (): Promise<void> => {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      if (asyncReady) await finishSome(0.5)
      const due = net.takeDue(tick)
      if (due.length === 0) return
      for (const m of due) await deliver(m)
    }
    checker.violations.push(`message storm at tick ${tick}`)
  }

  const tickAll = async (drift: boolean): Promise<void> => {
    for (const n of alive()) {
      if (drift && chance(0.05)) continue
      if (n.raw === undefined) continue // crashed at a write earlier in this round
      n.raw.tick()
      await handle(n)
    }
  }

  const partition = (): void => {
    const what = partitionAtRandom(net, ids, rand)
    trace?.(`t${tick} ${what}`)
  }

  const changeMembership = async (): Promise<void> => {
    const leader = leaderNode()
    if (leader === undefined) return
    const st = leader.raw!.status()
    const voters = st.voters
    const learners = st.learners
    const outside = ids.filter(id => !voters.includes(id) && !learners.includes(id))
    const choices: ConfChange[] = []
    if (learners.length > 0) choices.push({ type: ConfChangeType.AddNode, node: pick(learners) })
    if (outside.length > 0 && voters.length < 5) {
      const node = pick(outside)
      choices.push({ type: ConfChangeType.AddNode, node }, { type: ConfChangeType.AddLearner, node })
    }
    if (voters.length > 3 || (voters.length === 3 && chance(0.2))) choices.push({ type: ConfChangeType.RemoveNode, node: pick(voters) })
    if (learners.length > 0) choices.push({ type: ConfChangeType.RemoveNode, node: pick(learners) })
    if (choices.length === 0) return
    const cc = pick(choices)
    try {
      leader.raw!.proposeConfChange(cc)
      await handle(leader)
      trace?.(`t${tick} ${leader.id} proposes ${ConfChangeType[cc.type]} ${cc.node}`)
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err
    }
  }

  const clientOp = async (): Promise<void> => {
    if (pendingPuts.size + pendingReads.size >= MAX_PENDING_OPS) return
    const live = alive()
    if (live.length === 0) return
    const leader = leaderNode()
    const node = leader !== undefined && chance(0.6) ? leader : pick(live)
    const key = pick(KEYS)
    const op = ++opSeq
    if (chance(0.5)) {
      try {
        node.raw!.propose(encodeCommand({ op, key, value: op }))
      } catch (err) {
        if (err instanceof ProposalDroppedError) return // never entered any log
        throw err
      }
      const o: KvOperation = { input: { kind: 'put', key, value: op }, output: null, call: ++clock, return: Infinity }
      history.push(o)
      pendingPuts.set(op, o)
      await handle(node)
    } else {
      const ctx = new TextEncoder().encode(`r${op}`)
      pendingReads.set(ctxKey(ctx), { node, key, call: ++clock, tick, index: 0 })
      node.raw!.readIndex(ctx)
      await handle(node)
    }
  }

  for (const n of nodes.values()) await start(n)

  // ---- chaotic phase ----
  for (tick = 0; tick < ticks && checker.violations.length === 0; tick++) {
    for (const [id, at] of restartAt) {
      if (at <= tick) {
        restartAt.delete(id)
        trace?.(`t${tick} restart ${id}`)
        await start(nodes.get(id)!)
      }
    }
    if (chance(pCrash) && restartAt.size < (storm ? 3 : 2)) {
      const n = pick(alive())
      if (n !== undefined) {
        n.crash(hooks, 'random')
        restartAt.set(n.id, tick + 1 + Math.floor(rand() * (storm ? 3 : 6) * ELECTION_TICK))
      }
    }
    for (const n of nodes.values()) {
      if (!n.alive && !restartAt.has(n.id)) restartAt.set(n.id, tick + 1 + Math.floor(rand() * 3 * ELECTION_TICK)) // crashed mid-Ready
    }
    if (chance(pPartition)) partition()
    if (chance(pConf)) await changeMembership()
    if (chance(pTransfer)) {
      const leader = leaderNode()
      const voters = leader?.raw!.status().voters.filter(v => v !== leader.id) ?? []
      if (leader !== undefined && voters.length > 0) {
        const to = pick(voters)
        trace?.(`t${tick} ${leader.id} transfers leadership to ${to}`)
        leader.raw!.transferLeader(to)
        await handle(leader)
      }
    }
    if (chance(pCompact)) {
      const n = pick(alive())
      await n?.compact(Math.floor(rand() * 4), hooks)
    }
    if (chance(pOp)) await clientOp()
    await tickAll(true)
    await deliverDue()
    for (const [ctx, r] of pendingReads) if (tick - r.tick > READ_TIMEOUT_TICKS) pendingReads.delete(ctx)
  }

  // ---- heal everything, then a leader must commit a final proposal ----
  let live = checker.violations.length === 0
  if (live) {
    healed = true
    disks?.calm()
    net.heal()
    net.faults = NO_FAULTS
    net.clearBefore(tick)
    for (const n of nodes.values()) if (!n.alive) await start(n)
    restartAt.clear()
    trace?.(`t${tick} healed`)
    const end = tick + livenessTicks
    let proposedIn = ''
    live = false
    for (; tick < end && checker.violations.length === 0; tick++) {
      await tickAll(false)
      await deliverDue()
      const leader = leaderNode()
      if (leader === undefined) continue
      const st = leader.raw!.status()
      // done when every voter applied the final proposal and everything committed
      if (finalApplied.has(leader.id) && st.voters.every(v => finalApplied.has(v) && nodes.get(v)!.applied >= checker.maxCommitted)) {
        live = true
        checker.checkNotLost(st.voters.map(v => {
          const n = nodes.get(v)!
          return { id: v, termAt: termAt(n), firstIndex: n.raw!.status().firstIndex }
        }))
        break
      }
      const mark = `${leader.id}@${st.term}`
      if (proposedIn !== mark && !finalApplied.has(leader.id)) {
        if (finalOp < 0) finalOp = ++opSeq
        try {
          leader.raw!.propose(encodeCommand({ op: finalOp, key: 'final', value: finalOp }))
          proposedIn = mark
          await handle(leader)
        } catch (err) {
          if (!(err instanceof ProposalDroppedError)) throw err
        }
      }
    }
    if (!live && checker.violations.length === 0) {
      const desc = alive().map(n => {
        const s = n.raw!.status()
        const pr = s.progress === undefined ? '' : ' ' + JSON.stringify(s.progress)
        return `${n.id}:${s.role}/t${s.term}/c${s.commit}/a${s.applied}/l${s.lastIndex}/f${s.firstIndex}/v[${s.voters.join(',')}]${pr}`
      }).join(' ')
      checker.violations.push(`liveness: no final commit within ${livenessTicks} ticks after healing (${desc})`)
    }
  }

  let lin: CheckResult = 'ok'
  if (checker.violations.length === 0) {
    lin = checkOperations(kvModel, history)
    if (lin === 'illegal') checker.violations.push('linearizability: the client history of the key-value store is not linearizable')
  }
  return { seed, violations: checker.violations, nodes: size, ticks: tick, operations: history.length, committed: checker.maxCommitted, linearizability: lin }
}

/**
 * One simulated disk per node for the disk WAL, with faults drawn from the seed: a crash at
 * any write, torn tails, bit flips found on restart (which the WAL must refuse). `calm`
 * ends the faults (healing).
 */
function simulatedDisks (seed: number, ids: NodeId[], checker: SafetyChecker, trace?: (line: string) => void): { disks: SimDisk[], crashAfterInstall: () => boolean, calm: () => void } {
  const rand = createRand(seed * 104_729 + 17)
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]
  const faults = { crash: pick([0.0005, 0.002, 0.01]), torn: pick([0, 0.5, 1]) }
  const pFlip = pick([0, 0.2, 0.5])
  const segmentBytes = pick([512, 4096, 65_536])
  const pInstallCrash = pick([0, 0.3])
  trace?.(`disks: crash at a write ${faults.crash}, torn ${faults.torn}, flip on restart ${pFlip}, crash after a snapshot install ${pInstallCrash}, segments of ${segmentBytes} bytes`)
  let calm = false
  const fss = ids.map((_, i) => {
    const fs = new SimFs(createRand(seed * 15_485_863 + i + 1))
    fs.faults = faults
    return fs
  })
  const disks = ids.map((id, i) => new WalSimDisk(fss[i], `/sim/${id}/raft`, {
    segmentBytes,
    flip: () => !calm && rand() < pFlip,
    violation: what => { checker.violations.push(`${id}: ${what}`) },
    trace
  }))
  return {
    disks,
    crashAfterInstall: () => rand() < pInstallCrash,
    calm: () => {
      calm = true
      for (const fs of fss) fs.faults = NO_DISK_FAULTS
    }
  }
}

function ctxKey (ctx: Uint8Array): string {
  return new TextDecoder().decode(ctx)
}
