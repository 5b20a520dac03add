// One transformed cell inside the cell host: its sandbox, its bounded mailbox processed
// one message at a time, its CPU/wall/memory limits, and restart-from-snapshot on a fault.
// Asks a cell makes, answers to them and finished async messages cross the isolate
// boundary in batches (packed strings, see isolate-bootstrap.ts), not one call each.
import { Sandbox, faultReason } from './sandbox.js'
import type { CodeCache } from './sandbox.js'
import { Malformed, cleanText, parseOutcome, parseOutgoing, MAX_ERROR_TEXT } from './boundary.js'
import type { EntryResult } from './boundary.js'
import type { StemPool } from './stem-pool.js'
import { maxArgsChars } from '../limits.js'
import type { CellLimits, RuntimeBounds } from '../limits.js'
import type { CellFault } from './protocol.js'
import { crashText, headersProblem, splitReply, statusProblem, withTrailer, isErrorStatus } from '../reply-meta.js'
import { mapStack } from './source-map.js'

export interface Message {
  method: string
  args: string
  /** called once with the outcome; ok → JSON text of the result, else the error message */
  reply: (ok: boolean, text: string) => void
  /** sent by a cell of another app: a crash it causes does not count toward this cell's failure budget */
  foreign?: boolean
  /** the id of the reminder this message fires (`method` is then its method, for reports) */
  reminder?: string
  /** take that reminder out of the state without running it */
  dropReminder?: boolean
}

export interface ActorHooks {
  /** a cell's outgoing ask/tell (askId is the cell's own); refusal message or undefined */
  ask: (actor: CellActor, askId: number, address: string, method: string, argsJson: string, tell: boolean) => string | undefined
  log: (actor: CellActor, text: string) => void
  /** a message failed with an error its method threw (not a crash): for the node's log */
  error: (actor: CellActor, method: string, message: string, status: number | undefined, stack: string) => void
  state: (actor: CellActor) => void
  fault: (actor: CellActor, kind: CellFault, reason: string) => void
  /** the actor has queued work: pump it soon (never re-entered from inside its own isolate) */
  schedule: (actor: CellActor) => void
  /** call `flushDeferred` soon, but after the replies of this turn have left */
  flushLater: (actor: CellActor) => void
  /** a text of `chars` characters came out of the isolate */
  entered: (chars: number) => void
}

/** The heap may pass isolated-vm's guideline limit by this factor before the host disposes the isolate. */
const HEAP_FACTOR = 1.5
/** Heap statistics cost ~2.5 µs: read them after every entry that ran ≥ 1 ms, else every 32nd entry. */
const HEAP_CHECK_EVERY = 32
const HEAP_CHECK_CPU_MS = 1
/** Separators of the packed records: a result carrying one is refused (valid JSON has none). */
const CONTROL = /[\x00-\x1f]/
/** Messages run in one entry into the isolate, at most. */
const MAX_BATCH = 64

export class CellActor {
  private sandbox: Sandbox | undefined
  /** bumped on every new sandbox so late answers to a dead isolate's asks are dropped */
  generation = 0
  state: string
  version: number
  failed = false
  private readonly queue: Message[] = []
  private running: { message: Message, id: number, cpuStart: number, wallTimer: NodeJS.Timeout } | undefined
  private messageSeq = 0
  private readonly crashes: number[] = []
  private readonly idleWork: Array<() => void> = []
  /** packed answers to this cell's asks, delivered in one entry */
  private answers: string[] = []
  private entriesSinceHeapCheck = 0
  /** messages to run one per entry (after a failed batch) */
  private singleSteps = 0
  /** logs and tells since the current entry started, and how many messages it runs (flood bounds) */
  logsThisMessage = 0
  tellsThisMessage = 0
  entryMessages = 1
  /** this cell's asks awaiting an answer */
  outstandingAsks = 0
  /** the microtasks at the end of the last entry may have made asks no entry collected yet */
  private flushDue = false

  constructor (
    readonly address: string,
    public hash: string,
    public code: string,
    public limits: CellLimits,
    private readonly bounds: RuntimeBounds,
    state: string | null,
    version: number,
    private readonly cache: CodeCache,
    private readonly pool: StemPool,
    private readonly hooks: ActorHooks
  ) {
    const sandbox = this.build(hash, code, limits, state)
    this.sandbox = sandbox
    this.state = sandbox.initialState
    this.version = version
    this.afterInstall(sandbox)
  }

  private build (hash: string, code: string, limits: CellLimits, state: string | null): Sandbox {
    const previous = this.generation
    const generation = ++this.generation
    try {
      return new Sandbox(this.address, hash, code, limits, this.bounds.maxMessageBytes, state, this.cache, this.pool, {
        log: text => { if (generation === this.generation) this.hooks.log(this, text) },
        entered: this.hooks.entered
      })
    } catch (err) {
      this.generation = previous
      throw err
    }
  }

  /** Asks the class's constructor (and its microtasks) made. */
  private afterInstall (sandbox: Sandbox): void {
    const entry = sandbox.fromInstall
    sandbox.fromInstall = undefined
    if (entry !== undefined) this.afterEntry(entry, undefined)
    if (this.sandbox === sandbox) this.flush(sandbox)
  }

  get queued (): number {
    return this.queue.length + (this.running !== undefined ? 1 : 0)
  }

  get stopped (): boolean {
    return this.sandbox === undefined
  }

  /** Queue a message; refused at once when the mailbox is full (backpressure). */
  deliver (message: Message): void {
    if (this.failed || this.sandbox === undefined) { message.reply(false, `cell ${this.address} has failed`); return }
    if (this.queued >= this.limits.mailbox) { message.reply(false, `mailbox of ${this.address} is full (${this.limits.mailbox} messages)`); return }
    const fits = maxArgsChars(this.limits, this.bounds)
    if (message.args.length > fits) {
      message.reply(false, `arguments of ${message.args.length} characters of JSON cannot fit the memory of ${this.address} (${Math.round(this.limits.memory / 1048576)} MiB): it takes at most ${fits}`)
      return
    }
    this.queue.push(message)
    if (this.running === undefined) this.hooks.schedule(this)
  }

  /** Run `work` once no message is running (transform-with-replace waits for the current message). */
  whenIdle (work: () => void): void {
    if (this.running === undefined) work()
    else this.idleWork.push(work)
  }

  /** An answer to one of this cell's asks, from the isolate generation that asked. */
  queueAnswer (generation: number, askId: number, ok: boolean, text: string): void {
    if (generation !== this.generation || this.sandbox === undefined) return
    // a result reaches the cell as its JSON alone; an error as its message and status (a 4th field)
    const { head, trailer } = splitReply(text)
    const malformed = ok && CONTROL.test(head)
    if (ok && !malformed) {
      this.answers.push(`${askId}\x01o\x01${head}`)
    } else {
      const status = malformed ? undefined : trailer?.error?.status
      const message = malformed ? 'malformed result' : trailer === undefined ? text : head
      this.answers.push(`${askId}\x01e\x01${cleanText(message, MAX_ERROR_TEXT)}${status !== undefined ? `\x01${status}` : ''}`)
    }
    if (this.answers.length === 1) this.hooks.schedule(this)
  }

  /**
   * Deliver answers, then run queued messages (in batches: one entry into the isolate for
   * many messages) until the mailbox is empty, a message awaits, or `budget` runs out;
   * then one 'flush' entry collects what the microtasks of those entries produced (asks
   * and finished messages after an await). That entry waits for the next turn unless a
   * message is awaiting (its result comes from it): the replies of synchronous messages,
   * already known, leave without waiting for one more entry into the isolate.
   */
  pump (budget: number): number {
    let ran = 0
    let entered = false
    for (;;) {
      if (this.answers.length > 0 && this.sandbox !== undefined) { this.deliverAnswers(this.sandbox); entered = true; continue }
      if (this.running !== undefined) break
      if (this.idleWork.length > 0) { (this.idleWork.shift() as () => void)(); continue }
      if (this.queue.length === 0 || ran >= budget || this.sandbox === undefined) break
      const size = this.singleSteps > 0 ? 1 : this.batchSize(Math.min(MAX_BATCH, budget - ran))
      if (this.singleSteps > 0) this.singleSteps--
      ran += this.runBatch(this.queue.splice(0, size), this.sandbox)
      entered = true
    }
    if (entered && this.sandbox !== undefined) {
      if (this.running !== undefined) this.flush(this.sandbox)
      else if (!this.flushDue) {
        this.flushDue = true
        this.hooks.flushLater(this)
      }
    }
    return ran
  }

  /** How many queued messages (at most `max`) go into one entry: their arguments together fit the cell's memory bound. */
  private batchSize (max: number): number {
    const fits = maxArgsChars(this.limits, this.bounds)
    let chars = 0
    let n = 0
    while (n < max && n < this.queue.length) {
      chars += this.queue[n].args.length
      if (n > 0 && chars > fits) break
      n++
    }
    return n
  }

  /** The 'flush' entry `pump` left for later, unless another one came first. */
  flushDeferred (): void {
    if (this.flushDue && this.sandbox !== undefined) this.flush(this.sandbox)
  }

  private flush (sandbox: Sandbox): void {
    this.flushDue = false
    const running = this.running
    const entryStart = sandbox.cpuMs()
    const cpuStart = running?.cpuStart ?? entryStart
    let entry: EntryResult
    try {
      entry = sandbox.enter(Math.max(1, this.limits.timeout - (entryStart - cpuStart)), 'flush')
    } catch (err) {
      this.crash(faultReason(err, this.limits), running?.message)
      return
    }
    this.afterEntry(entry, running?.message)
  }

  hasWork (): boolean {
    if (this.sandbox !== undefined && this.answers.length > 0) return true
    return this.running === undefined && (this.idleWork.length > 0 || (this.queue.length > 0 && this.sandbox !== undefined))
  }

  /**
   * Run messages in one entry. Returns how many ran; the rest go back to the front of
   * the queue. If a batch of several fails (CPU, memory), nothing of it escaped (replies,
   * state and asks only leave with the entry's result), so the isolate is rebuilt from
   * the last snapshot and the messages run again one at a time to find the culprit.
   */
  private runBatch (batch: Message[], sandbox: Sandbox): number {
    const ids: number[] = []
    let packed = ''
    for (const message of batch) {
      const id = ++this.messageSeq
      ids.push(id)
      const method = message.reminder === undefined ? message.method : `${message.dropReminder === true ? '\x05' : '\x04'}${message.reminder}`
      packed += (packed === '' ? '' : '\x02') + `${id}\x01${method}\x01${message.args}`
    }
    const cpuStart = sandbox.cpuMs()
    this.logsThisMessage = 0
    this.tellsThisMessage = 0
    this.entryMessages = batch.length
    let entry: EntryResult | undefined
    let fault: string | undefined
    try {
      entry = sandbox.enter(this.limits.timeout, 'calls', packed, Math.max(1, this.limits.timeout >> 2))
    } catch (err) {
      fault = faultReason(err, this.limits)
    }
    fault ??= this.limitExceeded(sandbox, cpuStart, cpuStart)
    if (fault !== undefined || entry === undefined) {
      if (batch.length === 1) {
        this.crash(fault ?? 'failed', batch[0])
      } else {
        this.queue.unshift(...batch)
        this.singleSteps = batch.length
        this.rebuild()
      }
      return 0
    }
    const results = entry.result === '' ? [] : entry.result.split('\x02')
    let ran = 0
    for (const record of results) {
      const cut = record.indexOf('\x01')
      const message = batch[ran]
      if (message === undefined || Number(record.slice(0, cut)) !== ids[ran]) {
        this.crash('returned a malformed answer', undefined)
        this.queue.unshift(...batch.slice(ran))
        return ran
      }
      ran++
      const result = record.slice(cut + 1)
      if (result === 'p') {
        const id = ids[ran - 1]
        const wallTimer = setTimeout(() => {
          if (this.running?.id === id) this.crash(`exceeded its wall-clock limit of ${this.bounds.messageWallTime} ms for one message`, message)
        }, this.bounds.messageWallTime)
        this.running = { message, id, cpuStart, wallTimer }
        break
      }
      if (!this.complete(message, result)) return ran
    }
    if (ran < batch.length) this.queue.unshift(...batch.slice(ran))
    this.afterEntry(entry, this.running?.message)
    return ran
  }

  /** A fresh isolate from the last snapshot, after a failed batch (not counted as a crash: the culprit is found next). */
  private rebuild (): void {
    this.sandbox?.dispose()
    this.sandbox = undefined
    this.answers = []
    try {
      const sandbox = this.build(this.hash, this.code, this.limits, this.state)
      this.sandbox = sandbox
      this.afterInstall(sandbox)
    } catch (err) {
      this.fail(`cannot restart: ${(err as Error).message}`)
    }
  }

  private deliverAnswers (sandbox: Sandbox): void {
    const packed = this.answers.join('\x02')
    this.answers = []
    const running = this.running
    const entryStart = sandbox.cpuMs()
    const cpuStart = running?.cpuStart ?? entryStart
    let entry: EntryResult
    try {
      entry = sandbox.enter(Math.max(1, this.limits.timeout - (entryStart - cpuStart)), 'resolve', packed)
    } catch (err) {
      this.crash(faultReason(err, this.limits), running?.message)
      return
    }
    if (this.overLimits(sandbox, cpuStart, entryStart, running?.message)) return
    this.afterEntry(entry, running?.message)
  }

  /** Send the asks an entry made and finish the async messages it completed. */
  private afterEntry (entry: EntryResult, current: Message | undefined): void {
    const generation = this.generation
    if (entry.out !== '') {
      for (const record of entry.out.split('\x02')) {
        const m = parseOutgoing(record, this.bounds.maxMessageBytes)
        if (m instanceof Malformed) {
          this.crash(m.reason, current)
          return
        }
        const refused = this.hooks.ask(this, m.askId, m.address, m.method, m.argsJson, m.tell)
        if (refused !== undefined && !m.tell) this.queueAnswer(generation, m.askId, false, refused)
      }
    }
    if (entry.finished !== '') {
      for (const record of entry.finished.split('\x02')) {
        const cut = record.indexOf('\x01')
        const running = this.running
        if (running === undefined || running.id !== Number(record.slice(0, cut))) continue
        clearTimeout(running.wallTimer)
        this.running = undefined
        if (!this.complete(running.message, record.slice(cut + 1))) return
      }
    }
    if (this.hasWork()) this.hooks.schedule(this)
  }

  /** Reply to a finished message and take its state; false if the answer was malformed (the cell crashed). */
  private complete (message: Message, text: string): boolean {
    // a reminder's firing is consumed even when its method throws: that state is kept
    const outcome = parseOutcome(text, this.state, this.bounds.maxMessageBytes, message.reminder !== undefined)
    if (outcome instanceof Malformed) {
      this.crash(outcome.reason, message)
      return false
    }
    if (outcome.state !== undefined && outcome.state !== this.state) {
      this.state = outcome.state
      this.version++
      this.hooks.state(this)
    }
    if (!outcome.ok) {
      this.replyError(message, outcome.error)
      return true
    }
    this.replyResult(message, outcome.value)
    return true
  }

  /** A result, with the status and headers of a `stem.response` checked again (the isolate is not trusted). */
  private replyResult (message: Message, text: string): void {
    const { head, trailer } = splitReply(text)
    const response = trailer?.response
    if (response === undefined) { message.reply(true, head); return }
    const problem = statusProblem(response.status) ?? headersProblem(response.headers)
    if (problem !== undefined) { this.replyError(message, `invalid stem.response from ${this.address}.${message.method}: ${problem}`); return }
    message.reply(true, withTrailer(head, { response }))
  }

  /** An error, tagged with this cell and the method, its stack mapped to the original sources. */
  private replyError (message: Message, text: string): void {
    const cut = text.indexOf('\n')
    const head = cut < 0 ? text : text.slice(0, cut)
    let status: number | undefined
    let raw = ''
    if (cut >= 0) {
      try {
        const e = (JSON.parse(text.slice(cut + 1)) as { error?: { status?: unknown, stack?: unknown } }).error
        if (isErrorStatus(e?.status)) status = e.status
        if (typeof e?.stack === 'string') raw = e.stack
      } catch {}
    }
    const stack = raw === '' ? '' : mapStack(raw, `${this.address}.js`, this.hash, this.code)
    this.hooks.error(this, message.method, head, status, stack)
    message.reply(false, withTrailer(head, { error: { cell: this.address, method: message.method, ...(status !== undefined ? { status } : {}), ...(stack !== '' ? { stack } : {}) } }))
  }

  /** Checks CPU and heap after an entry into the isolate; crashes the cell if one is exceeded. */
  private overLimits (sandbox: Sandbox, cpuStart: number, entryStart: number, message: Message | undefined): boolean {
    const reason = this.limitExceeded(sandbox, cpuStart, entryStart)
    if (reason === undefined) return false
    this.crash(reason, message)
    return true
  }

  /** Which limit the cell is past, if any (CPU since `cpuStart`; heap now and then). */
  private limitExceeded (sandbox: Sandbox, cpuStart: number, entryStart: number): string | undefined {
    const now = sandbox.cpuMs()
    if (now - cpuStart > this.limits.timeout * 1.05 + 5) return `exceeded its CPU time limit of ${this.limits.timeout} ms`
    if (++this.entriesSinceHeapCheck < HEAP_CHECK_EVERY && now - entryStart < HEAP_CHECK_CPU_MS) return undefined
    this.entriesSinceHeapCheck = 0
    if (sandbox.heapBytes() > this.limits.memory * HEAP_FACTOR) return `exceeded its memory limit of ${Math.round(this.limits.memory / 1048576)} MiB`
    return undefined
  }

  /** Drops the isolate; answers still in flight from it belong to a dead generation. */
  private disposeSandbox (): void {
    this.sandbox?.dispose()
    this.sandbox = undefined
    this.generation++
    this.answers = []
  }

  /** Dispose the isolate, fail the offending message, restart from the last snapshot (or mark failed). */
  crash (reason: string, offending: Message | undefined): void {
    this.disposeSandbox()
    if (this.running !== undefined) {
      clearTimeout(this.running.wallTimer)
      offending = offending ?? this.running.message
      if (this.running.message !== offending) this.running.message.reply(false, crashText(this.address, reason))
      this.running = undefined
    }
    offending?.reply(false, crashText(this.address, reason))
    this.hooks.fault(this, 'crashed', reason)
    const now = Date.now()
    // another app's message must not be able to use up this cell's failure budget
    if (offending?.foreign !== true) this.crashes.push(now)
    while (this.crashes.length > 0 && this.crashes[0] < now - this.bounds.crashWindow) this.crashes.shift()
    if (this.crashes.length >= this.bounds.maxCrashes) {
      this.fail(`crashed ${this.crashes.length} times within ${this.bounds.crashWindow / 1000} s; last: ${reason}`)
      return
    }
    let sandbox: Sandbox
    try {
      sandbox = this.build(this.hash, this.code, this.limits, this.state)
    } catch (err) {
      this.fail(`cannot restart: ${(err as Error).message}`)
      return
    }
    this.sandbox = sandbox
    this.hooks.fault(this, 'restarted', reason)
    this.afterInstall(sandbox)
    if (this.hasWork()) this.hooks.schedule(this)
  }

  private fail (reason: string): void {
    this.failed = true
    this.stop(`cell ${this.address} has failed`)
    this.hooks.fault(this, 'failed', reason)
  }

  /**
   * Replace the code, keeping the state (upgrade). The old isolate keeps serving if the
   * new code throws while loading. Throws the load error.
   */
  replace (hash: string, code: string, limits: CellLimits): void {
    const previous = this.sandbox
    const next = this.build(hash, code, limits, this.state)
    previous?.dispose()
    this.sandbox = next
    this.answers = []
    this.hash = hash
    this.code = code
    this.limits = limits
    this.failed = false
    this.state = next.initialState
    this.afterInstall(next)
  }

  /** Dispose the isolate and refuse everything queued with `why`. */
  stop (why: string): void {
    this.disposeSandbox()
    if (this.running !== undefined) {
      clearTimeout(this.running.wallTimer)
      this.running.message.reply(false, why)
      this.running = undefined
    }
    for (const message of this.queue.splice(0)) message.reply(false, why)
    // waiting control work (a replace) runs now and finds the cell stopped
    for (const work of this.idleWork.splice(0)) work()
  }
}
