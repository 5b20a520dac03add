// One cell's isolate inside the cell host: creation from a bundle (with compiled-code
// cache), and synchronous calls into the isolate bounded by a CPU budget.
// Synchronous calls avoid a thread hop per message; every entry into the isolate carries
// a timeout, which also covers the microtasks the call runs (async continuations).
import ivm from 'isolated-vm'
import { BOOTSTRAP_SOURCE } from './isolate-bootstrap.js'
import { isolateMemoryMiB } from '../limits.js'
import type { CellLimits, RuntimeBounds } from '../limits.js'

export interface SandboxHooks {
  /** a cell's stem.ask / stem.tell; returns a refusal message, or undefined if accepted */
  ask: (askId: number, address: string, method: string, argsJson: string, tell: boolean) => string | undefined
  log: (text: string) => void
  /** an async message finished: text is 'o'/'e' + value + '\0' + state */
  done: (id: number, text: string) => void
}

// compileModule sets these at run time; isolated-vm's typings omit them on Module
type CompiledModule = ivm.Module & { cachedData?: ivm.ExternalCopy<ArrayBuffer>, cachedDataRejected?: boolean }

/** Compiled-code cache shared by all cells of a host running the same bundle. */
export class CodeCache {
  private readonly data = new Map<string, ivm.ExternalCopy<ArrayBuffer>>()

  compile (isolate: ivm.Isolate, hash: string, code: string, filename: string): ivm.Module {
    const cachedData = this.data.get(hash)
    if (cachedData !== undefined) {
      const module = isolate.compileModuleSync(code, { filename, cachedData }) as CompiledModule
      if (module.cachedDataRejected !== true) return module
    }
    const module = isolate.compileModuleSync(code, { filename, produceCachedData: true }) as CompiledModule
    if (module.cachedData !== undefined) this.data.set(hash, module.cachedData)
    return module
  }

  forget (hash: string): void {
    this.data.delete(hash)
  }
}

/** Why an entry into the isolate ended the cell. */
export class SandboxFault extends Error {}

export class Sandbox {
  readonly isolate: ivm.Isolate
  private readonly control: ivm.Reference<(op: string, a?: ivm.Transferable, b?: ivm.Transferable, c?: ivm.Transferable) => string | undefined>
  private readonly context: ivm.Context
  /** the state snapshot the isolate was built with or last produced */
  initialState: string

  /**
   * Build an isolate running `code` with `state` (JSON text) restored into its instance.
   * Throws an Error with a one-line reason if the module fails to load.
   */
  constructor (address: string, hash: string, code: string, limits: CellLimits, bounds: RuntimeBounds, state: string | null, cache: CodeCache, hooks: SandboxHooks) {
    this.isolate = new ivm.Isolate({ memoryLimit: isolateMemoryMiB(limits.memory) })
    try {
      this.context = this.isolate.createContextSync()
      const ask = new ivm.Callback(hooks.ask, { sync: true })
      const log = new ivm.Callback(hooks.log, { sync: true })
      const done = new ivm.Callback(hooks.done, { sync: true })
      this.control = this.context.evalClosureSync(BOOTSTRAP_SOURCE, [ask, log, done, address, bounds.maxMessageBytes], { result: { reference: true } })
      const module = cache.compile(this.isolate, hash, code, `${address}.js`)
      module.instantiateSync(this.context, specifier => {
        throw new Error(`cells cannot import '${specifier}': a bundle must be one self-contained module`)
      })
      module.evaluateSync({ timeout: limits.timeout })
      this.initialState = this.enter(limits.timeout, 'install', module.namespace.derefInto() as unknown as ivm.Transferable, state) as string
    } catch (err) {
      this.dispose()
      throw new Error(`cannot load ${address}: ${faultReason(err, limits)}`)
    }
  }

  /** Call into the isolate with a CPU budget (ms). Throws SandboxFault if the cell must end. */
  enter (budgetMs: number, op: string, a?: ivm.Transferable, b?: ivm.Transferable, c?: ivm.Transferable): string | undefined {
    try {
      const result = this.control.applySync(undefined, [op, a, b, c], { timeout: Math.max(1, Math.ceil(budgetMs)) })
      if (result !== undefined && typeof result !== 'string') throw new SandboxFault('returned a non-string from its dispatcher')
      return result
    } catch (err) {
      if (err instanceof SandboxFault) throw err
      throw new SandboxFault((err as Error)?.message ?? String(err))
    }
  }

  /** CPU time the isolate has used, ms */
  cpuMs (): number {
    return Number(this.isolate.cpuTime) / 1e6
  }

  /** heap in use, bytes (used + external), or Infinity once disposed */
  heapBytes (): number {
    if (this.isolate.isDisposed) return Infinity
    const s = this.isolate.getHeapStatisticsSync()
    return s.used_heap_size + s.externally_allocated_size
  }

  dispose (): void {
    if (!this.isolate.isDisposed) {
      try { this.isolate.dispose() } catch {}
    }
  }
}

/** One-line reason from an isolated-vm error. */
export function faultReason (err: unknown, limits: CellLimits): string {
  const message = (err as Error)?.message ?? String(err)
  if (/timed out/i.test(message)) return `exceeded its CPU time limit of ${limits.timeout} ms`
  if (/memory limit/i.test(message)) return `exceeded its memory limit of ${isolateMemoryMiB(limits.memory)} MiB`
  return message.split('\n')[0].slice(0, 500)
}
