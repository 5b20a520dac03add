// The leader starting a primary it does not see running (a new instance, a failover the
// leader learned of by taking over, a restart of nodes or of the whole mesh): it asks the
// nodes that may hold a copy for their inventory first and follows recovery.ts's plan —
// promote the copy on the target, hand it another node's newest copy, start it blank only
// when no copy can exist, or wait (`recovering`) / report `lost` until the missing holders
// are back or the app's owner accepts the loss of what they hold (acceptLoss).
import { setTimeout as delay } from 'node:timers/promises'
import type { CellLimits } from '../cells/limits.js'
import type { Logger } from '../util/logger.js'
import type { AppState } from './app-state.js'
import type { HostedApp } from './app-groups.js'
import { NotSentError } from './clones.js'
import type { CloneService, CopyReport } from './clones.js'
import { leaseWaitUntil, nextWaitMark, planRecovery } from './recovery.js'
import type { Copy, FencedAnswer, Holder, WaitMark } from './recovery.js'

export interface PrimaryRecoveryComponents {
  self: string
  clones: Pick<CloneService, 'inventoryOf' | 'fetchCopy' | 'promote'>
  logger: Logger
  /** whether the capacity view counts `peer` alive (one that is not gets a short inventory timeout) */
  alive: (peer: string) => boolean
  /** throws (leader-lease.ts LeaseLapsedError) unless this node still leads the app under its lease: checked before each effect */
  checkLease: (h: HostedApp) => Promise<void>
  /** transforms the instance on `node` (blank, or from `from`) */
  startPrimary: (address: string, node: string, code: PrimaryCode, from?: { state: string, version: number, replies?: string }) => Promise<void>
}

export interface PrimaryCode {
  bundle: string
  owner: Uint8Array
  limits: CellLimits
  /** the placement epoch it starts in (a node that knows a newer one refuses the start) */
  epoch: number
  /** makes the bundle available from the leader, before a blank start or a start from a fetched copy */
  prepare?: () => Promise<void>
}

export interface PrimaryRecoveryInit {
  /** ms to wait (`recovering`) for a node that may hold a newer copy before reporting the instance `lost` (default 20 s) */
  waitBoundMs?: number
  /** ms for one node's inventory (default 3 s; 500 ms for a node the capacity view does not count alive) */
  inventoryTimeoutMs?: number
  /** ms a primary may answer on a clone's confirmation (clones.ts leaseMs, default 1 s) */
  leaseMs?: number
}

function lostWhy (missing: string[], copies: Copy[]): string {
  const damaged = copies.filter(c => c.damaged === true).map(c => c.node)
  return [missing.length > 0 ? `${missing.join(', ')} did not answer` : '', damaged.length > 0 ? `the copy on ${damaged.join(', ')} is damaged on disk` : ''].filter(x => x !== '').join('; ')
}

export type RecoveryOutcome = 'started' | 'recovering' | 'lost'

export class PrimaryRecovery {
  /** `group address` → since when the leader has been looking for its copies, in which epoch and for which target */
  private readonly since = new Map<string, WaitMark>()
  /** `group address` → the last outcome logged (one line per change, not per round) */
  private readonly reported = new Map<string, string>()
  /** `group address` → why it is `recovering` or `lost` now */
  private readonly reasons = new Map<string, string>()
  /** node → the inventory asks waiting on it, which a failure verdict on it ends (peerDown) */
  private readonly asking = new Map<string, Set<AbortController>>()
  /** `group address` → the episode (WaitMark) of a `lost` instance whose owner accepted the loss of what its missing holders hold */
  private readonly accepted = new Map<string, string>()

  constructor (private readonly components: PrimaryRecoveryComponents, private readonly init: PrimaryRecoveryInit = {}) {}

  /**
   * The failure detector judged `peer` down: the inventory asks waiting on it end now. A
   * node stalled (SIGSTOP) just before a recovery began is still alive in the capacity
   * view, so its ask gets the long timeout; a new leader taking over from a stalled leader
   * that also ran the primary waited that timeout out (3 s) before the failover went on.
   */
  peerDown (peer: string): void {
    for (const c of this.asking.get(peer) ?? []) c.abort(new Error(`${peer} was judged down`))
  }

  /** why the instance is `recovering` or `lost` after its last round, in words for `stem cells` */
  reason (group: string, address: string): string | undefined {
    return this.reasons.get(`${group} ${address}`)
  }

  /**
   * The app's owner accepts losing what the missing holders of `address` may hold
   * (`stem restart APP/CELL --accept-loss`): its next round starts it from the newest copy
   * found, or blank when there is none. Only an instance this leader reports `lost` now,
   * and only for this episode: a later failover waits for its holders again.
   */
  acceptLoss (group: string, address: string): boolean {
    const key = `${group} ${address}`
    const mark = this.since.get(key)
    if (this.reported.get(key) !== 'lost' || mark === undefined) return false
    this.accepted.set(key, mark.episode)
    return true
  }

  /** `node`'s inventory, or an error after `ms`, or as soon as `node` is judged down */
  private async inventoryOf (node: string, app: string, ms: number, fence: Parameters<CloneService['inventoryOf']>[3]): Promise<CopyReport[]> {
    const down = new AbortController()
    const waiting = this.asking.get(node) ?? new Set()
    this.asking.set(node, waiting.add(down))
    try {
      return await this.components.clones.inventoryOf(node, app, AbortSignal.any([AbortSignal.timeout(ms), down.signal]), fence)
    } finally {
      waiting.delete(down)
      if (waiting.size === 0) this.asking.delete(node)
    }
  }

  async start (h: HostedApp, state: AppState, address: string, target: string, code: PrimaryCode): Promise<RecoveryOutcome> {
    const { clones, logger } = this.components
    const key = `${h.group} ${address}`
    const holders: Holder[] = state.holders?.[address] ?? []
    const asked = [...new Set([target, ...holders.map(x => x.node)])]
    const copies: Copy[] = []
    /** the holders that answered, and what each said of the clone there (recovery.ts leaseWaitUntil) */
    const answers = new Map<string, FencedAnswer>()
    /** holders no ask reached: the stream to them could not be opened */
    const notSent = new Set<string>()
    const timeout = this.init.inventoryTimeoutMs ?? 3000
    await Promise.all(asked.map(async node => {
      try {
        // a dead node must not hold up a failover; one just restarted may not be in the view yet.
        // The ask fences the holder: it confirms no state of an older epoch's primary after answering
        const inventory = await this.inventoryOf(node, h.app, this.components.alive(node) ? timeout : Math.min(timeout, 500), { address, epoch: state.epochs[address] ?? 0, primary: target })
        const mine = inventory.find(c => c.address === address)
        // no copy of it there: no clone there took a state, so none confirmed one
        answers.set(node, { at: Date.now(), quietMs: mine === undefined ? Infinity : mine.quietMs })
        if (mine !== undefined) copies.push({ node, version: mine.version, epoch: mine.epoch, running: mine.running, damaged: mine.damaged })
      } catch (err) {
        if (err instanceof NotSentError) notSent.add(node)
        logger.debug(`app ${h.app}: no inventory from ${node}: ${(err as Error).message}`)
      }
    }))
    // every holder that answered was fenced by now
    const now = Date.now()
    const mark = nextWaitMark(this.since.get(key), `${state.epochs[address] ?? 0} ${target}`, now)
    this.since.set(key, mark)
    const waitBoundMs = this.init.waitBoundMs ?? 20_000
    const acceptLoss = this.accepted.get(key) === mark.episode
    const plan = planRecovery({ target, holders, answered: new Set(answers.keys()), copies, waitedMs: now - mark.since, waitBoundMs, acceptLoss })
    const say = (outcome: string, line: string, warn = false): void => {
      if (this.reported.get(key) === outcome) return
      this.reported.set(key, outcome)
      if (warn) logger.warn(`app ${h.app}: ${line}`)
      else logger.info(`app ${h.app}: ${line}`)
    }
    /** a recovering or lost instance: its reason, logged once per change */
    const held = (outcome: 'recovering' | 'lost', reason: string): 'recovering' | 'lost' => {
      this.reasons.set(key, reason)
      say(outcome, `${address} is ${outcome}: ${reason}`, outcome === 'lost')
      return outcome
    }
    const missingNote = (missing: string[]): string => missing.length === 0 ? '' : `; ${missing.join(', ')} did not answer`
    switch (plan.kind) {
      case 'wait':
        return held('recovering', `waiting for ${plan.missing.join(', ')}, which may hold its newest copy (shown lost if not back within ${Math.round(waitBoundMs / 1000)} s)`)
      case 'lost': {
        const older = plan.older
        const why = older === undefined
          ? `no usable copy of its state was found (${lostWhy(plan.missing, copies)})`
          : `a newer copy than the one on ${older.node} may exist (${lostWhy(plan.missing, copies)})`
        const from = older === undefined ? 'blank' : `the copy on ${older.node} (state version ${older.version}, epoch ${older.epoch})`
        return held('lost', `${why}; it is not served until a copy comes back, or until \`stem restart ${address.slice(0, address.lastIndexOf('#'))} --accept-loss\` starts it from ${from}, giving up any newer state`)
      }
      case 'running':
        break
      case 'blank':
        await code.prepare?.()
        await this.components.checkLease(h)
        await this.components.startPrimary(address, target, code)
        break
      case 'promote':
        // the holder kept the bundle of its copy in its own store
        await this.leaseLapsed(leaseWaitUntil(plan, holders, target, code.epoch, answers, notSent, now, this.init.leaseMs ?? 1000))
        await this.components.checkLease(h)
        await clones.promote(target, address, code.epoch)
        say('started', `${address} recovered on ${target} from its own copy (state version ${plan.copy.version}, epoch ${plan.copy.epoch}${missingNote(plan.missing)})`)
        break
      case 'copy': {
        await code.prepare?.()
        const fetched = await clones.fetchCopy(plan.copy.node, address)
        await this.leaseLapsed(leaseWaitUntil(plan, holders, target, code.epoch, answers, notSent, now, this.init.leaseMs ?? 1000))
        await this.components.checkLease(h)
        await this.components.startPrimary(address, target, code, { state: fetched.state, version: fetched.version, replies: fetched.replies })
        say('started', `${address} recovered on ${target} from the copy on ${plan.copy.node} (state version ${fetched.version}, epoch ${fetched.epoch}${missingNote(plan.missing)})`)
        break
      }
    }
    if (acceptLoss) logger.warn(`app ${h.app}: ${address} started on ${target} (${plan.kind}), its owner having accepted the loss of what its missing holders hold`)
    this.since.delete(key)
    this.reported.delete(key)
    this.reasons.delete(key)
    this.accepted.delete(key)
    return 'started'
  }

  /** resolves at `until` (ms, this clock): a primary the plan replaces can no longer answer on a clone's confirmation then (recovery.ts leaseWaitUntil) */
  private async leaseLapsed (until: number): Promise<void> {
    const rest = until - Date.now()
    if (rest > 0) await delay(rest)
  }
}
