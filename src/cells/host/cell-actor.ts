// One transformed cell inside the cell host: its sandbox, its bounded mailbox processed
// one message at a time, its CPU/wall/memory limits, and restart-from-snapshot on a fault.
import { Sandbox, SandboxFault, faultReason } from './sandbox.js'
import type { CodeCache, SandboxHooks } from './sandbox.js'
import type { CellLimits, RuntimeBounds } from '../limits.js'
import type { CellFault } from './protocol.js'

export interface Message {
  method: string
  args: string
  /** called once with the outcome; ok → JSON text of the result, else the error message */
  reply: (ok: boolean, text: string) => void
}

export interface ActorHooks {
  /** a cell's outgoing ask/tell (askId is the cell's own); refusal message or undefined */
  ask: (actor: CellActor, askId: number, address: string, method: string, argsJson: string, tell: boolean) => string | undefined
  log: (actor: CellActor, text: string) => void
  state: (actor: CellActor) => void
  fault: (actor: CellActor, kind: CellFault, reason: string) => void
  /** the actor has queued work: pump it soon (never re-entered from inside its own isolate) */
  schedule: (actor: CellActor) => void
}

/** The heap may pass isolated-vm's guideline limit by this factor before the host disposes the isolate. */
const HEAP_FACTOR = 1.5

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
  /** logs accepted since the current message started (flood bound) */
  logsThisMessage = 0

  constructor (
    readonly address: string,
    public hash: string,
    public code: string,
    public limits: CellLimits,
    private readonly bounds: RuntimeBounds,
    state: string | null,
    version: number,
    private readonly cache: CodeCache,
    private readonly hooks: ActorHooks
  ) {
    this.sandbox = this.build(hash, code, limits, state)
    this.state = this.sandbox.initialState
    this.version = version
  }

  private build (hash: string, code: string, limits: CellLimits, state: string | null): Sandbox {
    const previous = this.generation
    const generation = ++this.generation
    const hooks: SandboxHooks = {
      ask: (askId, address, method, argsJson, tell) => generation === this.generation ? this.hooks.ask(this, askId, address, method, argsJson, tell) : 'cell was restarted',
      log: text => { if (generation === this.generation) this.hooks.log(this, text) },
      done: (id, text) => { if (generation === this.generation) this.asyncDone(id, text) }
    }
    try {
      return new Sandbox(this.address, hash, code, limits, this.bounds, state, this.cache, hooks)
    } catch (err) {
      this.generation = previous
      throw err
    }
  }

  get queued (): number {
    return this.queue.length + (this.running !== undefined ? 1 : 0)
  }

  /** Queue a message; refused at once when the mailbox is full (backpressure). */
  deliver (message: Message): void {
    if (this.failed || this.sandbox === undefined) { message.reply(false, `cell ${this.address} has failed`); return }
    if (this.queued >= this.limits.mailbox) { message.reply(false, `mailbox of ${this.address} is full (${this.limits.mailbox} messages)`); return }
    this.queue.push(message)
    if (this.running === undefined) this.hooks.schedule(this)
  }

  /** Run `work` once no message is running (transform-with-replace waits for the current message). */
  whenIdle (work: () => void): void {
    if (this.running === undefined) work()
    else this.idleWork.push(work)
  }

  get stopped (): boolean {
    return this.sandbox === undefined
  }

  /** Process queued messages until the mailbox is empty, a message awaits, or `budget` runs out. Returns messages run. */
  pump (budget: number): number {
    let ran = 0
    for (;;) {
      if (this.running !== undefined) break
      if (this.idleWork.length > 0) { (this.idleWork.shift() as () => void)(); continue }
      if (this.queue.length === 0 || ran >= budget || this.sandbox === undefined) break
      this.start(this.queue.shift() as Message, this.sandbox)
      ran++
    }
    return ran
  }

  hasWork (): boolean {
    return this.running === undefined && (this.idleWork.length > 0 || (this.queue.length > 0 && this.sandbox !== undefined))
  }

  private start (message: Message, sandbox: Sandbox): void {
    const id = ++this.messageSeq
    const cpuStart = sandbox.cpuMs()
    this.logsThisMessage = 0
    let text: string | undefined
    try {
      text = sandbox.enter(this.limits.timeout, 'call', id, message.method, message.args)
    } catch (err) {
      this.crash(faultReason(err, this.limits), message)
      return
    }
    if (this.overLimits(sandbox, cpuStart, message)) return
    if (text === 'p') {
      const wallTimer = setTimeout(() => {
        if (this.running?.id === id) this.crash(`exceeded its wall-clock limit of ${this.bounds.messageWallTime} ms for one message`, message)
      }, this.bounds.messageWallTime)
      this.running = { message, id, cpuStart, wallTimer }
      return
    }
    this.complete(message, text)
  }

  /** Answer to one of this cell's outgoing asks; runs its continuation under the CPU budget. */
  resolveAsk (generation: number, askId: number, ok: boolean, text: string): void {
    const sandbox = this.sandbox
    if (generation !== this.generation || sandbox === undefined) return
    const running = this.running
    const cpuStart = running?.cpuStart ?? sandbox.cpuMs()
    const budget = this.limits.timeout - (sandbox.cpuMs() - cpuStart)
    try {
      sandbox.enter(Math.max(1, budget), 'resolve', askId, ok, text)
    } catch (err) {
      this.crash(faultReason(err, this.limits), running?.message)
      return
    }
    this.overLimits(sandbox, cpuStart, running?.message)
  }

  private asyncDone (id: number, text: string): void {
    // called from inside the isolate: finish after the current entry returns
    queueMicrotask(() => {
      const running = this.running
      if (running === undefined || running.id !== id) return
      clearTimeout(running.wallTimer)
      this.running = undefined
      this.complete(running.message, text)
      this.afterMessage()
    })
  }

  private complete (message: Message, text: string | undefined): void {
    if (text === undefined || (text[0] !== 'o' && text[0] !== 'e')) {
      this.crash('returned a malformed answer', message)
      return
    }
    const cut = text.lastIndexOf('\0')
    const state = text.slice(cut + 1)
    if (state !== this.state) {
      this.state = state
      this.version++
      this.hooks.state(this)
    }
    message.reply(text[0] === 'o', text.slice(1, cut))
  }

  private afterMessage (): void {
    if (this.hasWork()) this.hooks.schedule(this)
  }

  /** Checks CPU and heap after an entry into the isolate; crashes the cell if one is exceeded. */
  private overLimits (sandbox: Sandbox, cpuStart: number, message: Message | undefined): boolean {
    const cpu = sandbox.cpuMs() - cpuStart
    if (cpu > this.limits.timeout * 1.05 + 5) {
      this.crash(`exceeded its CPU time limit of ${this.limits.timeout} ms`, message)
      return true
    }
    if (sandbox.heapBytes() > this.limits.memory * HEAP_FACTOR) {
      this.crash(`exceeded its memory limit of ${Math.round(this.limits.memory / 1048576)} MiB`, message)
      return true
    }
    return false
  }

  /** Dispose the isolate, fail the offending message, restart from the last snapshot (or mark failed). */
  crash (reason: string, offending: Message | undefined): void {
    this.sandbox?.dispose()
    this.sandbox = undefined
    this.generation++
    if (this.running !== undefined) {
      clearTimeout(this.running.wallTimer)
      offending = offending ?? this.running.message
      if (this.running.message !== offending) this.running.message.reply(false, `cell ${this.address} crashed: ${reason}`)
      this.running = undefined
    }
    offending?.reply(false, `cell ${this.address} crashed: ${reason}`)
    this.hooks.fault(this, 'crashed', reason)
    const now = Date.now()
    this.crashes.push(now)
    while (this.crashes.length > 0 && this.crashes[0] < now - this.bounds.crashWindow) this.crashes.shift()
    if (this.crashes.length >= this.bounds.maxCrashes) {
      this.fail(`crashed ${this.crashes.length} times within ${this.bounds.crashWindow / 1000} s; last: ${reason}`)
      return
    }
    try {
      this.sandbox = this.build(this.hash, this.code, this.limits, this.state)
    } catch (err) {
      this.fail(`cannot restart: ${(err as Error).message}`)
      return
    }
    this.hooks.fault(this, 'restarted', reason)
    this.afterMessage()
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
    this.hash = hash
    this.code = code
    this.limits = limits
    this.failed = false
    this.state = next.initialState
  }

  /** Dispose the isolate and refuse everything queued with `why`. */
  stop (why: string): void {
    this.sandbox?.dispose()
    this.sandbox = undefined
    this.generation++
    if (this.running !== undefined) {
      clearTimeout(this.running.wallTimer)
      this.running.message.reply(false, why)
      this.running = undefined
    }
    for (const message of this.queue.splice(0)) message.reply(false, why)
    // waiting control work (a replace) runs now and finds the cell stopped
    for (const work of this.idleWork.splice(0)) work()
  }

  heapBytes (): number {
    return this.sandbox?.heapBytes() ?? 0
  }
}
