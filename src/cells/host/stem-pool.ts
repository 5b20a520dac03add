// Blank stem cells kept warm in the cell host: an isolate with its context and the
// bootstrap already in place, so a transform only compiles (from cache), links and runs
// the cell's module. Refilled in the background with isolated-vm's async calls, which
// run off the event loop. A blank is used once: it never held another cell's code.
import ivm from 'isolated-vm'
import { BOOTSTRAP_SOURCE } from './isolate-bootstrap.js'
import type { RuntimeBounds } from '../limits.js'
import { MAX_JSON_DEPTH } from '../../util/bounded-json.js'

export type Control = ivm.Reference<(op: string, a?: ivm.Transferable, b?: ivm.Transferable, c?: ivm.Transferable) => string>

export interface BlankStem {
  isolate: ivm.Isolate
  context: ivm.Context
  control: Control
  /** where the cell's stem.log goes, once bound */
  logTarget: { log?: (text: string) => void }
}

/** Blanks kept per isolate memory size. */
const POOL_SIZE = 2

export class StemPool {
  private readonly blanks = new Map<number, BlankStem[]>()
  private readonly filling = new Set<number>()
  private stopped = false

  constructor (private readonly bounds: () => RuntimeBounds) {}

  /** A blank stem cell with this memory limit (MiB): a warm one if there is one, else made now. */
  take (memoryMiB: number): BlankStem {
    const warm = this.blanks.get(memoryMiB)?.pop()
    // refill after the current transform has answered (a timer runs after this turn's
    // setImmediate flush of the reply): new Isolate() itself is synchronous
    setTimeout(() => { void this.refill(memoryMiB) }, 0)
    return warm ?? this.createSync(memoryMiB)
  }

  private createSync (memoryMiB: number): BlankStem {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMiB })
    try {
      const context = isolate.createContextSync()
      const logTarget: BlankStem['logTarget'] = {}
      const control = context.evalClosureSync(BOOTSTRAP_SOURCE, this.bootstrapArgs(logTarget), { result: { reference: true } })
      return { isolate, context, control, logTarget }
    } catch (err) {
      isolate.dispose()
      throw err
    }
  }

  private async createAsync (memoryMiB: number): Promise<BlankStem> {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMiB })
    try {
      const context = await isolate.createContext()
      const logTarget: BlankStem['logTarget'] = {}
      const control = await context.evalClosure(BOOTSTRAP_SOURCE, this.bootstrapArgs(logTarget), { result: { reference: true } })
      return { isolate, context, control, logTarget }
    } catch (err) {
      isolate.dispose()
      throw err
    }
  }

  private bootstrapArgs (logTarget: BlankStem['logTarget']): [ivm.Callback, number, number, number] {
    const log = new ivm.Callback((text: unknown) => { if (typeof text === 'string') logTarget.log?.(text) }, { sync: true })
    return [log, this.bounds().maxMessageBytes, this.bounds().maxPendingAsks, MAX_JSON_DEPTH]
  }

  private async refill (memoryMiB: number): Promise<void> {
    if (this.filling.has(memoryMiB) || this.stopped) return
    this.filling.add(memoryMiB)
    try {
      let list = this.blanks.get(memoryMiB)
      if (list === undefined) { list = []; this.blanks.set(memoryMiB, list) }
      while (list.length < POOL_SIZE && !this.stopped) list.push(await this.createAsync(memoryMiB))
    } catch {
      // a blank that cannot be made now is made on demand by take()
    } finally {
      this.filling.delete(memoryMiB)
    }
  }

  stop (): void {
    this.stopped = true
    for (const list of this.blanks.values()) for (const blank of list.splice(0)) blank.isolate.dispose()
  }
}
