// The node side of the cells layer: turns blank stem cells into verified bundles, sends
// them messages, reverts them, and supervises the cell hosts (one child process per app)
// that actually run the isolates. It never runs cell code in the node's own process.
import { TypedEventEmitter } from '@libp2p/interface'
import type { PublicKey } from '@libp2p/interface'
import { CellHostProcess } from './cell-host-process.js'
import { CellStateStore } from './state-store.js'
import { verifyBundle } from './bundle.js'
import type { CellBundle } from './bundle.js'
import { parseAddress } from './address.js'
import { keyedIdleOf, shardOfKey, KEYS_METHOD } from './keys.js'
import { checkLimits, DEFAULT_BOUNDS } from './limits.js'
import type { CellLimits, RuntimeBounds } from './limits.js'
import { toJsonText } from './json.js'
import type { JsonValue } from './json.js'
import type { CellRouter, RouteOptions } from './router.js'
import type { CellRuntimeEvents, CellStatus } from './events.js'
import type { FromHost } from './host/protocol.js'
import { errorFromReply, replyOfError, splitReply, timeoutText } from './reply-meta.js'
import { ReminderQueue, remindersOfState, remindersTail, REMINDER_RETRY_MS, MAX_REMINDER_ATTEMPTS } from './reminders.js'
import type { Reminder } from './reminders.js'
import { decodeReplyWindow, ReplyWindow, StateNotSafeError } from './reply-window.js'
import { SweepTimer } from '../util/sweep-timer.js'

export interface CellRuntimeInit {
  /** node data dir: each cell's last state is persisted under <dataDir>/cells */
  dataDir?: string
  /** where asks to cells outside a cell host go; default: this runtime's own cells */
  router?: CellRouter
  bounds?: Partial<RuntimeBounds>
  /** ms between cell host heartbeats (default 1000) */
  heartbeatInterval?: number
  /** ms without a heartbeat answer before a host is killed, plus the longest cell timeout (default 10000) */
  heartbeatTimeout?: number
  /** RSS a cell host may use besides its cells, bytes (default 192 MiB) */
  hostRssBase?: number
  /** each cell counts as memory limit × this against its host's RSS limit (default 3: hostile code reaches 2–3×) */
  memoryHeadroom?: number
  /** host deaths within hostRestartWindow after which the app's cells are marked failed (default 5) */
  maxHostRestarts?: number
  hostRestartWindow?: number
  /**
   * Durability hook (SPEC §4: with clones, a reply leaves only once the state it produced
   * is held by a clone): results from a cell whose state version is newer than the last
   * one this gate acknowledged wait for gate(address, version) (the state reached
   * 'cell:snapshot' listeners before). A rejection fails the ask.
   */
  replyGate?: (address: string, version: number, read?: boolean) => Promise<void>
  /** where stem.log goes (besides the 'cell:log' event), and what cell hosts write to stderr */
  log?: (address: string, text: string) => void
  /**
   * The node's last guard on what it contributes: called before each transform with the
   * cell and every other cell that runs or is being transformed here; throwing refuses the
   * transform (its error: NO_ROOM, the address, this error's message).
   */
  admit?: (request: AdmissionRequest) => void
}

/** how the error of a transform refused by `admit` begins (the leader that asked recognises it) */
export const NO_ROOM = 'no room on this node for'

/** a cell and its memory limit, bytes */
export interface AdmittedCell {
  address: string
  app: string
  memory: number
}

export interface AdmissionRequest {
  cell: AdmittedCell
  /** the other cells that run here or are being transformed (a replaced cell is not among them) */
  running: AdmittedCell[]
}

export interface TransformOptions {
  /** the app owner's key: the bundle must be signed by it */
  owner: PublicKey | Uint8Array
  /** limits from the manifest; default: the bundle's */
  limits?: CellLimits
  /** JSON text of the state to start from (e.g. from a clone or the data dir); default: the class's initial fields */
  state?: string
  /** version of that state */
  version?: number
  /** the reply window that came with that state (CellSnapshotDetail.replies); a bad one is refused */
  replies?: string
  /** upgrade a transformed cell: new code, same state (or `state`, when given); the old code keeps running if the new one fails to load */
  replace?: boolean
  /**
   * the cell loads at once but serves (answers, fires reminders) only once this settles: a
   * promoted clone loads while the old primary's lease runs out (clones.ts)
   */
  servesFrom?: Promise<void>
}

export interface AskOptions {
  /** ms since the epoch; default now + the message wall-clock bound + heartbeat timeout */
  deadline?: number
  signal?: AbortSignal
  /** the sending cell's address, when a cell sent it (a crash caused by another app's message does not count against the cell) */
  from?: string
  /**
   * sender + message id: an ask with a key the cell's reply window holds is answered with
   * the recorded result, one with a key under way waits for it: it runs once
   */
  messageKey?: string
}

export interface CellInfo {
  address: string
  app: string
  status: CellStatus
  hash?: string
  limits?: CellLimits
  version: number
  /** messages (asks and tells) sent by the node to the cell and not yet answered or finished */
  inflight: number
  /** messages (asks and tells) delivered to the cell on this node so far */
  messages: number
  /** why and when (ms since the epoch) the cell failed, while it is `failed` */
  failure?: CellFailure
  /** a keyed cell's shard: its keys with saved state, and the keys that got a message within its idle time */
  keys?: { stored: number, active: string[] }
}

export interface CellFailure {
  reason: string
  at: number
}

export interface CellSnapshot {
  address: string
  hash: string
  state: string
  version: number
}

interface CellRecord {
  address: string
  app: string
  status: CellStatus
  bundle?: CellBundle
  limits?: CellLimits
  state: string | null
  version: number
  /** newest version the reply gate acknowledged */
  gatedVersion: number
  /** asks sent to the host and not yet answered */
  inflight: number
  /** tells sent to the host that it has not yet reported finished ('told') */
  tellsInflight: number
  /** asks and tells delivered so far */
  messages: number
  failure?: CellFailure
  /** the pending reminders of its state, fired here while it is transformed (a clone is not) */
  reminders: ReminderQueue
  /** the end of the last state from its reminders field on ('' without one): unchanged, it is not parsed again */
  remindersTail: string
  reminderTimer?: NodeJS.Timeout
  /** recorded results of answered asks, by AskOptions.messageKey */
  replies: ReplyWindow
  /** asks with a messageKey under way */
  keyed: Map<string, Promise<string>>
  /** a keyed cell's idle ms (from its bundle: keys.ts), 0 for a cell that is not keyed */
  keyedIdle: number
  /** keyed: when each key last got a message here (those within keyedIdle are its active keys) */
  keyUse: Map<string, number>
}

/** a message's target: the instance, and the key of a keyed cell */
interface Target {
  record: CellRecord
  key?: string
}

interface PendingCall {
  app: string
  record: CellRecord
  deadline: number
  resolve: (text: string) => void
  reject: (err: Error) => void
  cleanup?: () => void
  messageKey?: string
  /** its caller was answered `timed out`; the host still runs it and its result is still recorded (expireCall) */
  expired?: boolean
}

interface PendingRequest {
  app: string
  resolve: (answer: { ok: boolean, text: string, version: number }) => void
  reject: (err: Error) => void
}

interface AppHost {
  app: string
  process: CellHostProcess
  deaths: number[]
}

const MIB = 1024 * 1024
/** longest single timer for a reminder (setTimeout takes at most 2^31-1 ms): a later one is waited for in steps */
const MAX_REMINDER_TIMER_MS = 3_600_000

export class CellRuntime extends TypedEventEmitter<CellRuntimeEvents> {
  readonly bounds: RuntimeBounds
  /** routes to this runtime's own cells: the default router, and the messaging layer's local fallback */
  readonly localRouter: CellRouter = {
    ask: (address, method, argsJson, options) => this.askJson(address, method, argsJson, { deadline: options.deadline, signal: options.signal, from: options.from }),
    tell: (address, method, argsJson, options) => { this.tellJson(address, method, argsJson, options.from) }
  }

  private router: CellRouter
  private readonly cellsByAddress = new Map<string, CellRecord>()
  private readonly hosts = new Map<string, AppHost>()
  private readonly calls = new Map<number, PendingCall>()
  private readonly requests = new Map<number, PendingRequest>()
  private readonly store: CellStateStore | undefined
  private readonly roundRobin = new Map<string, number>()
  /** transforms under way (admitted, not yet transformed) */
  private readonly transforming = new Map<string, AdmittedCell>()
  private seq = 0
  /** asks with a message key answered by the run under way or from the reply window, instead of running again */
  dedupeHits = 0
  /** cells whose state came from their host and whose 'cell:snapshot' is due (see noteState) */
  private readonly snapshotsDue = new Set<CellRecord>()
  /** the calls' deadlines, swept every 250 ms while calls are pending */
  private readonly sweep = new SweepTimer(250, () => { this.sweepDeadlines() }, () => this.calls.size > 0)
  private running = false
  private readonly opts: Required<Omit<CellRuntimeInit, 'dataDir' | 'router' | 'bounds' | 'log' | 'replyGate' | 'admit'>> & Pick<CellRuntimeInit, 'log' | 'replyGate' | 'admit'>

  constructor (init: CellRuntimeInit = {}) {
    super()
    this.bounds = { ...DEFAULT_BOUNDS, ...init.bounds }
    this.router = init.router ?? this.localRouter
    this.store = init.dataDir !== undefined ? new CellStateStore(init.dataDir) : undefined
    this.opts = {
      heartbeatInterval: init.heartbeatInterval ?? 1000,
      heartbeatTimeout: init.heartbeatTimeout ?? 10_000,
      hostRssBase: init.hostRssBase ?? 192 * MIB,
      memoryHeadroom: init.memoryHeadroom ?? 3,
      maxHostRestarts: init.maxHostRestarts ?? 5,
      hostRestartWindow: init.hostRestartWindow ?? 60_000,
      log: init.log,
      replyGate: init.replyGate,
      admit: init.admit
    }
  }

  start (): void {
    if (this.running) return
    this.running = true
    if (this.calls.size > 0) this.sweep.arm()
  }

  /** Kill every cell host, fail what is in flight, and wait for pending state writes. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.sweep.disarm()
    for (const record of this.cellsByAddress.values()) clearTimeout(record.reminderTimer)
    const exits = [...this.hosts.values()].map(async host => {
      const exited = new Promise<void>(resolve => { host.process.child.once('close', () => { resolve() }) })
      this.hosts.delete(host.app)
      host.process.kill('node is stopping')
      if (host.process.alive) await exited
    })
    this.failPending(undefined, 'cell runtime stopped')
    await Promise.all(exits)
    await this.store?.flush()
  }

  /** Plug in the messaging layer's router (asks from cells to addresses outside their host). */
  setRouter (router: CellRouter): void {
    this.router = router
  }

  /** Pids of the running cell hosts, by app (for status and tests). */
  hostPids (): Map<string, number> {
    const pids = new Map<string, number>()
    for (const [app, host] of this.hosts) if (host.process.pid !== undefined && host.process.alive) pids.set(app, host.process.pid)
    return pids
  }

  /**
   * Memory held for cells, bytes: each running cell host's base footprint plus each cell's
   * limit × headroom (hostile code reaches 2–3× an isolate's limit). This is what capacity
   * accounting should count against the memory a node contributes; it is also each host's
   * RSS limit.
   */
  reservedMemory (): number {
    let total = 0
    for (const app of this.hosts.keys()) total += this.hostRssLimit(app)
    return total
  }

  /** An instance's info (a keyed address `app/cell#s/<key>`: its shard's). */
  cell (address: string): CellInfo | undefined {
    const keyAt = address.indexOf('/', address.indexOf('/') + 1)
    const record = this.cellsByAddress.get(address) ?? (keyAt > 0 ? this.cellsByAddress.get(address.slice(0, keyAt)) : undefined)
    return record !== undefined ? info(record) : undefined
  }

  cells (): CellInfo[] {
    return [...this.cellsByAddress.values()].map(info)
  }

  /**
   * Starts the app's cell host ahead of its first transform (a warm clone: its promotion
   * then only builds the isolate, not a process). It stays until `release` or a revert
   * leaves the app without cells.
   */
  prepare (app: string): void {
    this.assertRunning()
    this.hostFor(app)
  }

  /** Stops the app's cell host if it has no transformed cell (nothing to do otherwise). */
  release (app: string): void {
    if (this.running) this.stopIdleHost(app)
  }

  /** A blank stem cell at this address, ready to be transformed. */
  createStem (address: string): CellInfo {
    const { app } = parseAddress(address)
    let record = this.cellsByAddress.get(address)
    if (record === undefined) {
      record = blankRecord(address, app)
      this.cellsByAddress.set(address, record)
    }
    return info(record)
  }

  /** The bundle a transformed (or failed) cell runs. */
  bundleOf (address: string): CellBundle | undefined {
    return this.cellsByAddress.get(address)?.bundle
  }

  /** Last persisted state of a cell (node restart), if any. */
  async loadState (address: string): Promise<CellSnapshot | undefined> {
    const stored = await this.store?.load(address)
    return stored !== undefined ? { address, hash: stored.hash, state: stored.state, version: stored.version } : undefined
  }

  /**
   * Turn the cell at `address` into `bundle` (verified against the app owner first).
   * Resolves with the cell's info once it is transformed and ready.
   */
  async transform (address: string, bundle: CellBundle, options: TransformOptions): Promise<CellInfo> {
    this.assertRunning()
    const { app, cell } = parseAddress(address)
    if (bundle.app !== app || bundle.cell !== cell) throw new Error(`bundle ${bundle.app}/${bundle.cell} cannot transform cell ${address}`)
    await verifyBundle(bundle, options.owner)
    const limits = checkLimits(options.limits ?? bundle.limits)
    if (options.state !== undefined) checkStateText(options.state, this.bounds.maxMessageBytes)
    let replies: ReplyWindow | undefined
    try {
      replies = options.replies === undefined ? undefined : decodeReplyWindow(options.replies)
    } catch (err) {
      throw new Error(`cannot transform ${address}: ${(err as Error).message}`)
    }
    const record = this.cellsByAddress.get(address) ?? blankRecord(address, app)
    this.cellsByAddress.set(address, record)
    const replace = options.replace === true && record.status === 'transformed'
    if (record.status === 'transformed' && !replace) throw new Error(`cell ${address} is already transformed: revert it first or ask for replace`)
    // a failed cell transformed again (stem restart, a republish) starts from its last good
    // state; a replace keeps the running state unless one is handed in (a promoted clone's
    // or a copy's: the leader chose it, and a deposed primary still running here is stale)
    const state = options.state ?? (replace ? null : record.status === 'failed' ? record.state : null)
    const version = options.version ?? record.version
    const admitted: AdmittedCell = { address, app, memory: limits.memory }
    try {
      this.opts.admit?.({ cell: admitted, running: this.admittedCells(address) })
    } catch (err) {
      throw new Error(`${NO_ROOM} ${address}: ${(err as Error).message}`)
    }
    this.transforming.set(address, admitted)
    let answer
    try {
      // a running cell being replaced serves through its host, which would answer with the new code at once
      if (replace) await options.servesFrom
      answer = await this.request(app, req => ({ t: 'transform', req, address, hash: bundle.hash, code: bundle.code, limits, state, version, replace }))
      await options.servesFrom
    } finally {
      this.transforming.delete(address)
    }
    if (!answer.ok) throw new Error(answer.text)
    record.status = 'transformed'
    record.failure = undefined
    record.bundle = bundle
    record.keyedIdle = keyedIdleOf(bundle.code)
    record.limits = limits
    if (replies !== undefined) record.replies = replies
    this.noteState(record, answer.text, answer.version)
    // a state handed in (a promoted clone's) already passed the reply gate where it was
    // produced: answers that do not change it need not wait for the new clones
    if (state !== null) record.gatedVersion = Math.max(record.gatedVersion, record.version)
    this.dispatchEvent(new CustomEvent('cell:started', { detail: { address, hash: bundle.hash } }))
    return info(record)
  }

  /**
   * A failed cell back to serving, from its last good state (`stem restart`); a cell that
   * has not failed is left as it is. Resolves with its info.
   */
  async restart (address: string): Promise<CellInfo> {
    const record = this.cellsByAddress.get(address)
    if (record === undefined) throw new Error(`no cell ${address} on this node`)
    if (record.status !== 'failed') return info(record)
    const bundle = record.bundle as CellBundle
    const restarted = await this.transform(address, bundle, { owner: bundle.owner, limits: record.limits })
    this.dispatchEvent(new CustomEvent('cell:restarted', { detail: { address, hash: bundle.hash, reason: 'restarted after it failed' } }))
    return restarted
  }

  /** cells that run here or are being transformed, but the one at `except` */
  private admittedCells (except: string): AdmittedCell[] {
    const cells = new Map<string, AdmittedCell>()
    for (const r of this.cellsByAddress.values()) {
      if (r.status === 'transformed' && r.address !== except) cells.set(r.address, { address: r.address, app: r.app, memory: r.limits?.memory ?? 0 })
    }
    for (const [address, cell] of this.transforming) if (address !== except) cells.set(address, cell)
    return [...cells.values()]
  }

  /** Back to a blank stem cell: the isolate is disposed, queued messages get an error, the state is dropped. */
  async revert (address: string): Promise<void> {
    this.assertRunning()
    const record = this.cellsByAddress.get(address)
    if (record === undefined || record.status === 'stem' || record.status === 'reverted') throw new Error(`cell ${address} is not transformed`)
    if (record.status === 'transformed' && this.hosts.has(record.app)) {
      const answer = await this.request(record.app, req => ({ t: 'revert', req, address }))
      if (!answer.ok && record.status === 'transformed') throw new Error(answer.text)
    }
    const hash = record.bundle?.hash
    record.status = 'reverted'
    this.stopReminders(record)
    record.state = null
    record.bundle = undefined
    record.replies = new ReplyWindow()
    await this.store?.remove(address)
    this.dispatchEvent(new CustomEvent('cell:reverted', { detail: { address, hash } }))
    this.stopIdleHost(record.app)
  }

  /** The cell's current state (asked from its host, so it includes every answered message). */
  async snapshot (address: string): Promise<CellSnapshot> {
    const record = this.transformed(address)
    const answer = await this.request(record.app, req => ({ t: 'snapshot', req, address: record.address }))
    if (!answer.ok) throw new Error(answer.text)
    return { address: record.address, hash: record.bundle?.hash ?? '', state: answer.text, version: answer.version }
  }

  /** Ask a cell: arguments and result are JSON-like values. */
  async ask (address: string, method: string, args: unknown[] = [], options: AskOptions = {}): Promise<JsonValue> {
    const argsJson = toJsonText(args, 'arguments', this.bounds.maxMessageBytes)
    return JSON.parse(splitReply(await this.askJson(address, method, argsJson, options)).head) as JsonValue
  }

  /** Fire and forget. Throws at once if the cell cannot take it (unknown, reverted, mailbox full). */
  tell (address: string, method: string, args: unknown[] = []): void {
    this.tellJson(address, method, toJsonText(args, 'arguments', this.bounds.maxMessageBytes))
  }

  /** ask with the arguments (an array) and the result as JSON text: what routers use. */
  askJson (address: string, method: string, argsJson: string, options: AskOptions = {}): Promise<string> {
    if (method === KEYS_METHOD && options.from === undefined) return this.keysOfShard(address)
    const key = options.messageKey
    if (key !== undefined) {
      const record = this.cellsByAddress.get(address)
      const answered = record?.status === 'transformed' ? this.answered(record, key) : undefined
      if (answered !== undefined) return answered
    }
    let record: CellRecord
    let target: Target
    try {
      target = this.deliverable(address, method, argsJson)
      record = target.record
    } catch (err) {
      return Promise.reject(err)
    }
    if (key !== undefined && record.address !== address) {
      // app/cell resolved to a replica: its window decides
      const answered = this.answered(record, key)
      if (answered !== undefined) return answered
    }
    if (options.signal?.aborted === true) return Promise.reject(new Error(`ask to ${address} aborted`))
    const id = ++this.seq
    const deadline = options.deadline ?? Date.now() + this.bounds.messageWallTime + this.opts.heartbeatTimeout
    const { promise, resolve, reject } = Promise.withResolvers<string>()
    const pending: PendingCall = { app: record.app, record, deadline, resolve, reject, messageKey: key }
    if (options.signal !== undefined) {
      const signal = options.signal
      const onAbort = (): void => { this.settleCall(id, false, `ask to ${address} aborted`) }
      signal.addEventListener('abort', onAbort, { once: true })
      pending.cleanup = () => { signal.removeEventListener('abort', onAbort) }
    }
    this.addCall(id, pending)
    record.inflight++
    record.messages++
    if (key !== undefined) this.runsKeyed(record, key, promise)
    this.hostFor(record.app).process.send({ t: 'call', id, address: record.address, method, args: argsJson, tell: false, from: options.from, key: target.key })
    return promise
  }

  /** KEYS_METHOD: a keyed shard's keys, answered here without entering its isolate. */
  private keysOfShard (address: string): Promise<string> {
    try {
      const record = this.transformed(address)
      if (record.keyedIdle === 0) throw new Error(`cell ${address} is not keyed: it has no keys`)
      return Promise.resolve(JSON.stringify(keysOf(record)))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The answer of an ask with `key` that ran (its recorded result) or runs (its promise), if any. */
  private answered (record: CellRecord, key: string): Promise<string> | undefined {
    const running = record.keyed.get(key)
    if (running !== undefined) { this.dedupeHits++; return running }
    const recorded = record.replies.get(key)
    if (recorded === undefined) return undefined
    this.dedupeHits++
    if (recorded === null) return Promise.reject(new Error(`the ask to ${record.address} with this message id already ran; its result was too long to keep for retries`))
    // a result whose reply gate failed (or is still under way) is answered only once its
    // state is safe: the retry waits for the gate as the first answer did
    const gate = this.opts.replyGate
    if (gate === undefined || record.version <= record.gatedVersion) return Promise.resolve(recorded)
    return this.passGate(gate, record, record.version).then(() => recorded)
  }

  /** waits until the reply gate acknowledged `version` of the record's state (`read`: a result that changed no state, which the gate only fences) */
  private async passGate (gate: NonNullable<CellRuntimeInit['replyGate']>, record: CellRecord, version: number, read = false): Promise<void> {
    try {
      await gate(record.address, version, read)
    } catch (err) {
      throw new StateNotSafeError(`state of ${record.address} is not safe yet: ${(err as Error | undefined)?.message ?? String(err)}`)
    }
    record.gatedVersion = Math.max(record.gatedVersion, version)
  }

  /** `from`: the sending cell's address, if a cell sent it */
  tellJson (address: string, method: string, argsJson: string, from?: string): void {
    const { record, key } = this.deliverable(address, method, argsJson)
    // counted until the host reports it finished: tells fill the mailbox bound like asks
    record.tellsInflight++
    record.messages++
    this.hostFor(record.app).process.send({ t: 'call', id: 0, address: record.address, method, args: argsJson, tell: true, from, key })
  }

  private deliverable (address: string, method: string, argsJson: string): Target {
    this.assertRunning()
    if (typeof method !== 'string' || method.length === 0 || method.length > 200) throw new Error(`invalid method name for ${address}`)
    if (argsJson.length > this.bounds.maxMessageBytes) throw new Error(`arguments are too large: ${argsJson.length} characters of JSON, limit ${this.bounds.maxMessageBytes}`)
    const target = this.keyedTarget(address) ?? { record: this.transformed(address) }
    const record = target.record
    if (record.inflight + record.tellsInflight >= (record.limits?.mailbox ?? 0)) throw new Error(`mailbox of ${record.address} is full (${String(record.limits?.mailbox)} messages)`)
    if (target.key !== undefined) record.keyUse.set(target.key, Date.now())
    return target
  }

  /**
   * The shard of a keyed address: `app/cell#s/<key>` (as the mesh sends it), or
   * `app/cell/<key>` when this node holds every shard (the shard count is theirs).
   * undefined for an address without a key.
   */
  private keyedTarget (address: string): Target | undefined {
    const { app, cell, replica, key } = parseAddress(address)
    if (key === undefined) return undefined
    const base = `${app}/${cell}`
    const shard = replica ?? shardOfKey(key, Math.max(1, [...this.cellsByAddress.keys()].filter(a => a.startsWith(`${base}#`)).length))
    const record = this.transformed(`${base}#${shard}`)
    if (record.keyedIdle === 0) throw new Error(`cell ${base} is not keyed: address it as ${base} or ${base}#i`)
    return { record, key }
  }

  /** The transformed cell for `app/cell#i`, or a replica (round robin) for `app/cell`. */
  private transformed (address: string): CellRecord {
    let record = this.cellsByAddress.get(address)
    if (record === undefined && !address.includes('#')) {
      const replicas = [...this.cellsByAddress.values()].filter(r => r.status === 'transformed' && r.address.startsWith(`${address}#`))
      if (replicas.length > 0) {
        const n = (this.roundRobin.get(address) ?? 0) + 1
        this.roundRobin.set(address, n)
        record = replicas[n % replicas.length]
      } else {
        // none serving: a failed one says why
        record = [...this.cellsByAddress.values()].find(r => r.status === 'failed' && r.address.startsWith(`${address}#`))
      }
    }
    if (record === undefined) {
      parseAddress(address)
      throw new Error(`no cell ${address} on this node`)
    }
    if (record.status === 'stem') throw new Error(`cell ${address} is a blank stem cell: transform it first`)
    if (record.status === 'reverted') throw new Error(`cell ${address} is reverted: transform it first`)
    if (record.status === 'failed') throw new Error(`cell ${address} has failed: ${record.failure?.reason ?? 'see the node log'} (stem restart ${address.split('#')[0]} restarts it from its last good state)`)
    return record
  }

  private hostFor (app: string): AppHost {
    let host = this.hosts.get(app)
    if (host === undefined) {
      host = { app, process: this.spawnHost(app), deaths: [] }
      this.hosts.set(app, host)
    }
    return host
  }

  private spawnHost (app: string): CellHostProcess {
    const process: CellHostProcess = new CellHostProcess({
      app,
      bounds: this.bounds,
      localAsks: this.opts.replyGate === undefined,
      heartbeatInterval: this.opts.heartbeatInterval,
      heartbeatTimeout: () => this.opts.heartbeatTimeout + this.appCells(app).reduce((max, r) => Math.max(max, r.limits?.timeout ?? 0), 0),
      rssLimit: () => this.hostRssLimit(app),
      onMessage: message => { this.fromHost(app, message) },
      onStderr: text => { this.opts.log?.(`cell host of ${app}`, text.trimEnd()) },
      onExit: reason => { this.hostExited(app, process, reason) }
    })
    return process
  }

  private hostRssLimit (app: string): number {
    return this.opts.hostRssBase + this.appCells(app).reduce((sum, r) => sum + (r.limits?.memory ?? 0) * this.opts.memoryHeadroom, 0)
  }

  private appCells (app: string): CellRecord[] {
    return [...this.cellsByAddress.values()].filter(r => r.app === app && r.status === 'transformed')
  }

  private request (app: string, make: (req: number) => Parameters<CellHostProcess['send']>[0]): Promise<{ ok: boolean, text: string, version: number }> {
    const req = ++this.seq
    const { promise, resolve, reject } = Promise.withResolvers<{ ok: boolean, text: string, version: number }>()
    this.requests.set(req, { app, resolve, reject })
    this.hostFor(app).process.send(make(req))
    return promise
  }

  private fromHost (app: string, message: FromHost): void {
    switch (message.t) {
      case 'reply': this.settleCall(message.id, message.ok, message.text); return
      case 'done': {
        const pending = this.requests.get(message.req)
        if (pending === undefined) return
        this.requests.delete(message.req)
        pending.resolve({ ok: message.ok, text: message.text, version: message.version })
        return
      }
      case 'told': {
        const record = this.cellsByAddress.get(message.address)
        if (record?.app === app) record.tellsInflight = Math.max(0, record.tellsInflight - message.n)
        return
      }
      case 'state': {
        const record = this.cellsByAddress.get(message.address)
        if (record?.app === app && record.status === 'transformed') this.noteState(record, message.state, message.version, true)
        return
      }
      case 'event': {
        const record = this.cellsByAddress.get(message.address)
        if (record?.app !== app) return
        if (message.kind === 'failed') this.markFailed(record, message.reason)
        this.dispatchEvent(new CustomEvent(`cell:${message.kind}`, { detail: { address: message.address, hash: record.bundle?.hash, reason: message.reason } }))
        return
      }
      case 'ask': this.routeFromCell(app, message); return
      case 'log':
        this.opts.log?.(message.address, message.text)
        this.dispatchEvent(new CustomEvent('cell:log', { detail: { address: message.address, text: message.text } }))
        return
      case 'error':
        this.dispatchEvent(new CustomEvent('cell:error', { detail: { address: message.address, method: message.method, message: message.text, ...(message.stack !== '' ? { stack: message.stack } : {}) } }))
    }
  }

  private routeFromCell (app: string, m: Extract<FromHost, { t: 'ask' }>): void {
    const options: RouteOptions = { from: m.from, deadline: Date.now() + this.bounds.askTimeout }
    if (m.tell) {
      try { this.router.tell(m.address, m.method, m.args, options) } catch {}
      return
    }
    const answer = (ok: boolean, text: string): void => {
      this.hosts.get(app)?.process.send({ t: 'answer', askId: m.askId, ok, text })
    }
    let routed: Promise<string>
    try {
      routed = this.router.ask(m.address, m.method, m.args, options)
    } catch (err) {
      answer(false, replyOfError(err))
      return
    }
    routed.then(text => { answer(true, text) }, (err: Error) => { answer(false, replyOfError(err)) })
  }

  private settleCall (id: number, ok: boolean, text: string): void {
    const pending = this.calls.get(id)
    if (pending === undefined) return
    this.calls.delete(id)
    pending.record.inflight--
    pending.cleanup?.()
    const record = pending.record
    const gate = this.opts.replyGate
    // errors leave the state as it was (a retry may run again): only results are recorded
    if (ok && pending.messageKey !== undefined && record.status === 'transformed') record.replies.record(pending.messageKey, text)
    // errors leave the state as it was, so only results wait for the gate. A result that
    // changed no state passes it too: the gate answers at once while the primary's lease
    // holds and re-confirms with a clone when it lapsed, so a deposed primary (cut off or
    // woken from a stall) cannot answer reads from its stale state
    if (ok && gate !== undefined) {
      const version = record.version
      const read = version <= record.gatedVersion
      const wait = (): void => { this.passGate(gate, record, version, read).then(() => { pending.resolve(text) }, pending.reject) }
      // the gate waits for the snapshot, which is dispatched once this batch's replies are recorded
      if (this.snapshotsDue.has(record)) queueMicrotask(wait)
      else wait()
      return
    }
    if (ok) pending.resolve(text)
    else pending.reject(errorFromReply(text))
  }

  /**
   * A new state of the cell. From its host (`fromHost`), the 'cell:snapshot' waits for the
   * end of the IPC batch: the replies to the messages that produced the state follow it in
   * the same batch, and their results go into the reply window the snapshot carries.
   */
  private noteState (record: CellRecord, state: string, version: number, fromHost = false): void {
    record.state = state
    record.version = version
    const hash = record.bundle?.hash ?? ''
    if (this.store !== undefined) {
      this.store.save({ address: record.address, hash, version, state }).catch((err: Error) => {
        this.opts.log?.(record.address, `cannot persist state: ${err.message}`)
      })
    }
    this.noteReminders(record, state)
    if (!fromHost) {
      this.snapshotsDue.delete(record)
      this.dispatchSnapshot(record)
      return
    }
    if (this.snapshotsDue.has(record)) return
    this.snapshotsDue.add(record)
    queueMicrotask(() => {
      if (this.snapshotsDue.delete(record) && record.status === 'transformed') this.dispatchSnapshot(record)
    })
  }

  private dispatchSnapshot (record: CellRecord): void {
    if (record.state === null) return
    this.dispatchEvent(new CustomEvent('cell:snapshot', { detail: { address: record.address, hash: record.bundle?.hash ?? '', state: record.state, version: record.version, replies: record.replies.encode() } }))
  }

  /** The reminders of a cell's new state: fire what is due, wait for the next one. */
  private noteReminders (record: CellRecord, state: string): void {
    const tail = remindersTail(state)
    if (tail === record.remindersTail) return
    record.remindersTail = tail
    const { reminders, problems } = remindersOfState(state)
    for (const problem of problems) this.opts.log?.(record.address, `reminder not used: ${problem}`)
    record.reminders.replace(reminders)
    this.armReminders(record)
  }

  private armReminders (record: CellRecord): void {
    clearTimeout(record.reminderTimer)
    record.reminderTimer = undefined
    if (!this.running || record.status !== 'transformed') return
    const next = record.reminders.nextAt()
    if (next === undefined) return
    record.reminderTimer = setTimeout(() => { this.fireDue(record) }, Math.min(Math.max(0, next - Date.now()), MAX_REMINDER_TIMER_MS))
    record.reminderTimer.unref()
  }

  private stopReminders (record: CellRecord): void {
    clearTimeout(record.reminderTimer)
    record.reminderTimer = undefined
    record.reminders.clear()
    record.remindersTail = ''
  }

  /** Fires the due reminders (at most half the mailbox at once, and at least one: other senders keep room). */
  private fireDue (record: CellRecord): void {
    record.reminderTimer = undefined
    if (!this.running || record.status !== 'transformed') return
    const room = Math.max(1, Math.floor((record.limits?.mailbox ?? 1) / 2) - record.inflight - record.tellsInflight)
    for (const reminder of record.reminders.take(Date.now(), room)) this.fire(record, reminder)
    this.armReminders(record)
  }

  /**
   * One firing, answered like an ask (and gated like one: the state without the reminder
   * reaches the clones before it settles). A firing that fails before the cell took the
   * reminder out of its state (crash, host restart, full mailbox) is retried after a pause,
   * and after MAX_REMINDER_ATTEMPTS such failures dropped unrun (a poison reminder must not
   * fail its cell); the cell runs a reminder id once (it is gone from its table after).
   */
  private fire (record: CellRecord, reminder: Reminder): void {
    const drop = record.reminders.exhausted(reminder.id)
    if (drop) this.opts.log?.(record.address, `reminder ${reminder.id} (${reminder.method}) did not fire in ${MAX_REMINDER_ATTEMPTS} attempts: dropped`)
    const id = ++this.seq
    const { promise, resolve, reject } = Promise.withResolvers<string>()
    this.addCall(id, { app: record.app, record, deadline: Date.now() + this.bounds.messageWallTime + this.opts.heartbeatTimeout, resolve, reject })
    record.inflight++
    record.messages++
    const settled = (): void => {
      record.reminders.settled(reminder.id, Date.now())
      this.armReminders(record)
    }
    promise.then(settled, (err: Error) => {
      if (record.reminders.has(reminder.id)) this.opts.log?.(record.address, `reminder ${reminder.id} (${reminder.method}) did not fire: ${err.message.split('\n')[0]}; tried again in ${REMINDER_RETRY_MS} ms`)
      settled()
    })
    this.hostFor(record.app).process.send({ t: 'fire', id, address: record.address, reminder: reminder.id, method: reminder.method, drop })
  }

  /** A cell host died: fail what it had in flight, then restart its cells from their last state (or mark them failed). */
  private hostExited (app: string, process: CellHostProcess, reason: string): void {
    const host = this.hosts.get(app)
    if (host?.process !== process) return
    this.failPending(app, `cell host of app ${app} crashed: it ${reason}`)
    // the tells it held are lost with it
    for (const record of this.cellsByAddress.values()) if (record.app === app) record.tellsInflight = 0
    this.dispatchEvent(new CustomEvent('host:crashed', { detail: { app, pid: process.pid, reason } }))
    const cells = this.appCells(app)
    for (const record of cells) this.dispatchEvent(new CustomEvent('cell:crashed', { detail: { address: record.address, hash: record.bundle?.hash, reason: `its cell host ${reason}` } }))
    const now = Date.now()
    host.deaths = host.deaths.filter(t => t > now - this.opts.hostRestartWindow)
    host.deaths.push(now)
    if (!this.running || cells.length === 0) { this.hosts.delete(app); return }
    if (host.deaths.length >= this.opts.maxHostRestarts) {
      this.hosts.delete(app)
      for (const record of cells) {
        const why = `its cell host died ${host.deaths.length} times within ${this.opts.hostRestartWindow / 1000} s; last: ${reason}`
        this.markFailed(record, why)
        this.dispatchEvent(new CustomEvent('cell:failed', { detail: { address: record.address, hash: record.bundle?.hash, reason: why } }))
      }
      return
    }
    host.process = this.spawnHost(app)
    this.dispatchEvent(new CustomEvent('host:restarted', { detail: { app, pid: host.process.pid, reason } }))
    for (const record of cells) {
      const bundle = record.bundle as CellBundle
      const limits = record.limits as CellLimits
      this.request(app, req => ({ t: 'transform', req, address: record.address, hash: bundle.hash, code: bundle.code, limits, state: record.state, version: record.version, replace: false }))
        .then(answer => {
          if (answer.ok) {
            this.noteState(record, answer.text, answer.version)
            this.dispatchEvent(new CustomEvent('cell:restarted', { detail: { address: record.address, hash: bundle.hash, reason } }))
          } else {
            this.markFailed(record, `cannot restart: ${answer.text}`)
            this.dispatchEvent(new CustomEvent('cell:failed', { detail: { address: record.address, hash: bundle.hash, reason: `cannot restart: ${answer.text}` } }))
          }
        }, () => {})
    }
  }

  private markFailed (record: CellRecord, reason: string): void {
    this.stopReminders(record)
    record.status = 'failed'
    record.failure = { reason, at: Date.now() }
  }

  private failPending (app: string | undefined, why: string): void {
    for (const [id, call] of this.calls) if (app === undefined || call.app === app) this.settleCall(id, false, why)
    for (const [req, pending] of this.requests) {
      if (app !== undefined && pending.app !== app) continue
      this.requests.delete(req)
      pending.reject(new Error(why))
    }
  }

  private stopIdleHost (app: string): void {
    const host = this.hosts.get(app)
    if (host === undefined || this.appCells(app).length > 0) return
    if ([...this.requests.values()].some(r => r.app === app)) return
    this.hosts.delete(app)
    host.process.kill('has no cells left')
  }

  private addCall (id: number, call: PendingCall): void {
    this.calls.set(id, call)
    if (this.running) this.sweep.arm()
  }

  private sweepDeadlines (): void {
    const now = Date.now()
    for (const [id, call] of this.calls) {
      if (call.deadline > now) continue
      if (call.messageKey !== undefined && call.expired !== true) this.expireCall(call, now)
      else this.settleCall(id, false, timeoutText(call.record.address))
    }
  }

  /** `key`'s ask runs (its `promise`): a retry with the key joins it until it settles */
  private runsKeyed (record: CellRecord, key: string, promise: Promise<string>): void {
    const keyed = record.keyed
    keyed.set(key, promise)
    const done = (): void => { if (keyed.get(key) === promise) keyed.delete(key) }
    promise.then(done, done)
  }

  /**
   * An ask with a message key outlived its deadline: its caller hears `timed out`, but the
   * host may still run it (it was sent), so the call stays until the host answers. Its
   * result then goes into the reply window and to any retry, which joins it meanwhile:
   * settled as a failure here, a retry ran again beside it and the cell applied it twice
   * (a keyed cell under load). The host answers within a message's wall time or is judged
   * hung; past that the call fails for good.
   */
  private expireCall (call: PendingCall, now: number): void {
    call.reject(errorFromReply(timeoutText(call.record.address)))
    call.cleanup?.()
    call.cleanup = undefined
    const late = Promise.withResolvers<string>()
    late.promise.catch(() => {})
    call.resolve = late.resolve
    call.reject = late.reject
    call.expired = true
    call.deadline = now + this.bounds.messageWallTime + this.opts.heartbeatTimeout
    this.runsKeyed(call.record, call.messageKey as string, late.promise)
  }

  private assertRunning (): void {
    if (!this.running) throw new Error('cell runtime is not running')
  }
}

function blankRecord (address: string, app: string): CellRecord {
  return { address, app, status: 'stem', state: null, version: 0, gatedVersion: 0, inflight: 0, tellsInflight: 0, messages: 0, reminders: new ReminderQueue(), remindersTail: '', replies: new ReplyWindow(), keyed: new Map(), keyedIdle: 0, keyUse: new Map() }
}

function info (record: CellRecord): CellInfo {
  return { address: record.address, app: record.app, status: record.status, hash: record.bundle?.hash, limits: record.limits, version: record.version, inflight: record.inflight + record.tellsInflight, messages: record.messages, ...(record.failure !== undefined ? { failure: { ...record.failure } } : {}), ...(record.keyedIdle > 0 ? { keys: keysOf(record) } : {}) }
}

/** a keyed shard's stored keys (counted in its state text) and active keys (forgetting the idle ones) */
function keysOf (record: CellRecord): { stored: number, active: string[] } {
  const since = Date.now() - record.keyedIdle
  for (const [key, at] of record.keyUse) if (at < since) record.keyUse.delete(key)
  let stored = 0
  if (record.state !== null) {
    try {
      const keys = (JSON.parse(record.state) as { keys?: Record<string, unknown> }).keys
      stored = keys !== null && typeof keys === 'object' ? Object.keys(keys).length : 0
    } catch {}
  }
  return { stored, active: [...record.keyUse.keys()].sort() }
}

function checkStateText (state: string, maxBytes: number): void {
  if (state.length > maxBytes) throw new Error(`state is too large: ${state.length} characters of JSON, limit ${maxBytes}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(state)
  } catch {
    throw new Error('state is not valid JSON text')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('state must be the JSON text of an object')
}

export function createCellRuntime (init: CellRuntimeInit = {}): CellRuntime {
  return new CellRuntime(init)
}
