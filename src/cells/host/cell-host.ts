// The cell host: holds one app's cells (isolates) in a child process of the node.
// It runs their mailboxes, keeps asks between its own cells inside the process, and
// sends everything else (replies, state, events, asks to other addresses) to the node.
import { CellActor } from './cell-actor.js'
import type { ActorHooks } from './cell-actor.js'
import type { ExternalStrings } from './external-strings.js'
import { CodeCache } from './sandbox.js'
import { StemPool } from './stem-pool.js'
import { DEFAULT_BOUNDS } from '../limits.js'
import type { RuntimeBounds } from '../limits.js'
import type { FromHost, ToHost } from './protocol.js'
import { cleanText, MAX_LOG_TEXT } from './boundary.js'
import { parseAddress } from '../address.js'
import { SweepTimer } from '../../util/sweep-timer.js'

/** Messages one cell runs before others get a turn (and before the event loop does). */
const PUMP_BUDGET = 256
const CONTROL = /[\x00-\x1f]/
const REMINDER_ID = /^[A-Za-z0-9_-]{1,64}$/
/** Logs one message may write (the isolate drops the rest itself; this holds if it was tampered with). */
const MAX_LOGS_PER_MESSAGE = 100

interface PendingAsk {
  actor: CellActor
  generation: number
  cellAskId: number
  deadline: number
  target: string
}

export class CellHost {
  private readonly cells = new Map<string, CellActor>()
  private readonly cache = new CodeCache()
  private bounds: RuntimeBounds = DEFAULT_BOUNDS
  private readonly pool = new StemPool(() => this.bounds)
  private readonly ready = new Set<CellActor>()
  private draining = false
  /** actors whose 'flush' entry waits until the replies of this turn are sent (setImmediate after the outbox's) */
  private readonly flushes = new Set<CellActor>()
  private readonly pendingAsks = new Map<number, PendingAsk>()
  private askSeq = 0
  /** see ToHost 'init' */
  private localAsks = true
  private app = ''
  /** the pending asks' deadlines, swept every 200 ms while asks are pending */
  private readonly sweep = new SweepTimer(200, () => { this.sweepAsks() }, () => this.pendingAsks.size > 0)
  private readonly hooks: ActorHooks

  /** cells whose state changed since the last flush: sent once, latest only, before the replies */
  private readonly changedState = new Set<CellActor>()
  /** tells finished since the last flush, per cell: one count instead of a reply each */
  private readonly told = new Map<string, number>()

  /** `texts`: the host process's collection of texts out of isolates (main.ts; absent in tests that run a host in their own process) */
  constructor (private readonly send: (message: FromHost) => void, private readonly wake: () => void, texts?: ExternalStrings) {
    this.hooks = {
      ask: (actor, cellAskId, address, method, argsJson, tell) => this.outgoing(actor, cellAskId, address, method, argsJson, tell),
      log: (actor, text) => {
        const cap = MAX_LOGS_PER_MESSAGE * actor.entryMessages
        if (++actor.logsThisMessage > cap) return
        this.send({ t: 'log', address: actor.address, text: cleanText(text, MAX_LOG_TEXT) })
      },
      state: actor => { this.changedState.add(actor); this.wake() },
      fault: (actor, kind, reason) => { this.send({ t: 'event', address: actor.address, kind, reason }) },
      error: (actor, method, message, status, stack) => {
        // an HTTP status below 500 is an answer the cell chose, not a fault
        if (status === undefined || status >= 500) this.send({ t: 'error', address: actor.address, method, text: message, stack })
      },
      schedule: actor => { this.schedule(actor) },
      flushLater: actor => { this.flushLater(actor) },
      entered: chars => { texts?.note(chars) }
    }
  }

  handle (message: ToHost): void {
    switch (message.t) {
      case 'init': this.bounds = message.bounds; this.localAsks = message.localAsks; this.app = message.app; return
      case 'ping': this.send({ t: 'pong', n: message.n, rss: process.memoryUsage.rss() }); return
      case 'call': this.nodeCall(message.id, message.address, message.method, message.args, message.tell, message.from, message.key); return
      case 'fire': this.fire(message.id, message.address, message.reminder, message.method, message.drop); return
      case 'answer': this.answer(message.askId, message.ok, message.text); return
      case 'transform': this.transform(message); return
      case 'revert': this.revert(message.req, message.address); return
      case 'snapshot': {
        const actor = this.cells.get(message.address)
        if (actor === undefined) this.send({ t: 'done', req: message.req, ok: false, text: `no cell ${message.address} on this host`, version: 0 })
        else this.send({ t: 'done', req: message.req, ok: true, text: actor.state, version: actor.version })
      }
    }
  }

  /** State messages for the cells changed since the last call, and counts of finished tells (the batcher's prelude). */
  takeChangedState (): FromHost[] {
    if (this.changedState.size === 0 && this.told.size === 0) return []
    const out: FromHost[] = []
    for (const actor of this.changedState) out.push({ t: 'state', address: actor.address, state: actor.state, version: actor.version })
    this.changedState.clear()
    for (const [address, n] of this.told) out.push({ t: 'told', address, n })
    this.told.clear()
    return out
  }

  private nodeCall (id: number, address: string, method: string, args: string, tell: boolean, from: string | undefined, key: string | undefined): void {
    const reply = tell
      ? () => { this.told.set(address, (this.told.get(address) ?? 0) + 1); this.wake() }
      : (ok: boolean, text: string) => { this.send({ t: 'reply', id, ok, text }) }
    const actor = this.cells.get(address)
    if (actor === undefined) { reply(false, `no cell ${address} on this node`); return }
    // control characters separate the records packed into the isolate; valid JSON has none
    if (CONTROL.test(method) || CONTROL.test(args) || (key !== undefined && CONTROL.test(key))) { reply(false, `invalid method name, arguments or key for ${address}`); return }
    // a keyed message: the isolate activates the key (isolate-bootstrap.ts)
    const packed = key === undefined ? method : `\x06${key}\x06${method}`
    actor.deliver({ method: packed, args, reply, foreign: from !== undefined && !from.startsWith(`${this.app}/`) })
  }

  private fire (id: number, address: string, reminder: string, method: string, drop: boolean): void {
    const reply = (ok: boolean, text: string): void => { this.send({ t: 'reply', id, ok, text }) }
    const actor = this.cells.get(address)
    if (actor === undefined) { reply(false, `no cell ${address} on this node`); return }
    if (!REMINDER_ID.test(reminder) || CONTROL.test(method)) { reply(false, `invalid reminder for ${address}`); return }
    actor.deliver({ method, args: '[]', reply, reminder, dropReminder: drop })
  }

  private transform (m: Extract<ToHost, { t: 'transform' }>): void {
    const done = (ok: boolean, text: string, version: number): void => { this.send({ t: 'done', req: m.req, ok, text, version }) }
    const existing = this.cells.get(m.address)
    // a replace that brings a state (a promotion, a start from a copy) starts afresh from it:
    // the instance running here is an old copy whose state must not survive
    if (existing !== undefined && !existing.failed && !(m.replace && m.state !== null)) {
      if (!m.replace) { done(false, `cell ${m.address} is already transformed: revert it first or ask for replace`, existing.version); return }
      existing.whenIdle(() => {
        if (this.cells.get(m.address) !== existing || existing.stopped) { done(false, `cell ${m.address} was reverted during the upgrade`, 0); return }
        try {
          existing.replace(m.hash, m.code, m.limits)
        } catch (err) {
          done(false, `${(err as Error).message} (kept the previous code)`, existing.version)
          return
        }
        done(true, existing.state, existing.version)
      })
      return
    }
    if (existing !== undefined) { existing.stop('replaced'); this.cells.delete(m.address) }
    let actor: CellActor
    try {
      actor = new CellActor(m.address, m.hash, m.code, m.limits, this.bounds, m.state, m.version, this.cache, this.pool, this.hooks)
    } catch (err) {
      done(false, (err as Error).message, 0)
      return
    }
    this.cells.set(m.address, actor)
    done(true, actor.state, actor.version)
  }

  private revert (req: number, address: string): void {
    const actor = this.cells.get(address)
    if (actor === undefined) { this.send({ t: 'done', req, ok: false, text: `no cell ${address} on this host`, version: 0 }); return }
    this.cells.delete(address)
    actor.stop(`cell ${address} was reverted`)
    this.send({ t: 'done', req, ok: true, text: actor.state, version: actor.version })
  }

  /** A cell's stem.ask/tell: local cells directly (unless replies are gated), anything else through the node's router. */
  private outgoing (from: CellActor, cellAskId: number, address: string, method: string, argsJson: string, tell: boolean): string | undefined {
    if (argsJson.length > this.bounds.maxMessageBytes) return `arguments are too large: ${argsJson.length} characters of JSON, limit ${this.bounds.maxMessageBytes}`
    // the isolate enforces these bounds itself; these checks hold if it was tampered with
    if (tell) {
      if (++from.tellsThisMessage > this.bounds.maxPendingAsks * from.entryMessages) return `too many tells from ${from.address} in one message (limit ${this.bounds.maxPendingAsks})`
    } else if (from.outstandingAsks >= this.bounds.maxPendingAsks) {
      return `too many pending asks from ${from.address} (limit ${this.bounds.maxPendingAsks})`
    }
    const target = this.localAsks ? this.resolveLocal(address) : undefined
    const generation = from.generation
    if (target !== undefined) {
      if (target.queued >= target.limits.mailbox) {
        if (tell) return undefined
        return `mailbox of ${target.address} is full (${target.limits.mailbox} messages)`
      }
      if (tell) {
        target.deliver({ method, args: argsJson, reply: () => {} })
        return undefined
      }
      const askId = ++this.askSeq
      from.outstandingAsks++
      this.pendingAsks.set(askId, { actor: from, generation, cellAskId, deadline: Date.now() + this.bounds.askTimeout, target: address })
      this.sweep.arm()
      target.deliver({ method, args: argsJson, reply: (ok, text) => { this.answer(askId, ok, text) } })
      return undefined
    }
    try { parseAddress(address) } catch (err) { return (err as Error).message }
    const askId = ++this.askSeq
    if (!tell) {
      from.outstandingAsks++
      this.pendingAsks.set(askId, { actor: from, generation, cellAskId, deadline: Date.now() + this.bounds.askTimeout, target: address })
      this.sweep.arm()
    }
    this.send({ t: 'ask', askId, from: from.address, address, method, args: argsJson, tell })
    return undefined
  }

  /** `app/cell#i` exactly, or for `app/cell` the first local replica. */
  private resolveLocal (address: string): CellActor | undefined {
    const exact = this.cells.get(address)
    if (exact !== undefined) return exact
    if (address.includes('#')) return undefined
    for (const [key, actor] of this.cells) if (key.startsWith(`${address}#`)) return actor
    return undefined
  }

  private answer (askId: number, ok: boolean, text: string): void {
    const pending = this.pendingAsks.get(askId)
    if (pending === undefined) return
    this.pendingAsks.delete(askId)
    pending.actor.outstandingAsks--
    if (ok && text.length > this.bounds.maxMessageBytes) { ok = false; text = `result is too large: ${text.length} characters of JSON, limit ${this.bounds.maxMessageBytes}` }
    pending.actor.queueAnswer(pending.generation, pending.cellAskId, ok, text)
  }

  private sweepAsks (): void {
    const now = Date.now()
    for (const [askId, p] of this.pendingAsks) {
      if (p.deadline <= now) this.answer(askId, false, `ask to ${p.target} timed out after ${this.bounds.askTimeout} ms`)
    }
  }

  private schedule (actor: CellActor): void {
    this.ready.add(actor)
    if (!this.draining) {
      this.draining = true
      queueMicrotask(() => { this.drain() })
    }
  }

  private flushLater (actor: CellActor): void {
    if (this.flushes.size === 0) {
      setImmediate(() => {
        const actors = [...this.flushes]
        this.flushes.clear()
        for (const a of actors) a.flushDeferred()
      })
    }
    this.flushes.add(actor)
  }

  private drain (): void {
    const deadline = performance.now() + 20
    while (this.ready.size > 0) {
      for (const actor of [...this.ready]) {
        this.ready.delete(actor)
        actor.pump(PUMP_BUDGET)
        // back of the line: the next pass (or the next turn) starts with the others
        if (actor.hasWork()) this.ready.add(actor)
        // checked after each cell, not after a pass: many busy cells must not hold the event loop for seconds
        if (performance.now() > deadline) break
      }
      if (performance.now() > deadline) {
        // let the event loop breathe (heartbeats, the link) before continuing
        setImmediate(() => { this.drain() })
        return
      }
    }
    this.draining = false
  }

  stop (): void {
    this.sweep.disarm()
    this.pool.stop()
    for (const actor of this.cells.values()) actor.stop('cell host is stopping')
    this.cells.clear()
  }
}
