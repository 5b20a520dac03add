// One cell's isolate inside the cell host: creation from a bundle (with compiled-code
// cache), and synchronous calls into the isolate bounded by a CPU budget.
// Synchronous calls avoid a thread hop per message; every entry into the isolate carries
// a timeout, which also covers the microtasks the call runs (async continuations).
import ivm from 'isolated-vm'
import { isolateMemoryMiB } from '../limits.js'
import type { CellLimits } from '../limits.js'
import type { Control, StemPool } from './stem-pool.js'
import { Malformed, splitEntry, stateError } from './boundary.js'
import type { EntryResult } from './boundary.js'

export interface SandboxHooks {
  log: (text: string) => void
  /** the length of every text out of the isolate (external-strings.ts) */
  entered: (chars: number) => void
}

// compileModule sets these at run time; isolated-vm's typings omit them on Module
type CompiledModule = ivm.Module & { cachedData?: ivm.ExternalCopy<ArrayBuffer>, cachedDataRejected?: boolean }

/** Compiled-code cache shared by all cells of a host running the same bundle. */
/** the least time budget for loading a cell, ms (its own `timeout` if larger) */
export const LOAD_BUDGET_MS = 1000

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
  private readonly control: Control
  private readonly context: ivm.Context
  /** the state snapshot the isolate was built with */
  initialState: string
  /** what loading produced (asks made by top-level code or the constructor), taken by the actor */
  fromInstall: EntryResult | undefined

  /**
   * Turn a blank stem cell from the pool into `code`, with `state` (JSON text) restored
   * into its instance; its initial state must be a JSON object of at most `maxBytes`. Throws an Error with a one-line reason if the module fails to load.
   */
  constructor (address: string, hash: string, code: string, limits: CellLimits, maxBytes: number, state: string | null, cache: CodeCache, pool: StemPool, private readonly hooks: SandboxHooks) {
    const blank = pool.take(isolateMemoryMiB(limits.memory))
    this.isolate = blank.isolate
    this.context = blank.context
    this.control = blank.control
    blank.logTarget.log = hooks.log
    // loading (compiling, the module's top level, the constructor) gets at least
    // LOAD_BUDGET_MS: a message budget of 100 ms is met by loading on an idle machine, not
    // on a busy one, and a cell that fails to load fails its whole publish
    const budget = Math.max(limits.timeout, LOAD_BUDGET_MS)
    try {
      this.enter(budget, 'bind', address)
      const module = cache.compile(this.isolate, hash, code, `${address}.js`)
      module.instantiateSync(this.context, specifier => {
        throw new Error(`cells cannot import '${specifier}': a bundle must be one self-contained module`)
      })
      module.evaluateSync({ timeout: budget })
      const installed = this.enter(budget, 'install', module.namespace.derefInto() as unknown as ivm.Transferable, state)
      const invalid = stateError(installed.result, maxBytes)
      if (invalid !== undefined) throw new Error(invalid)
      this.initialState = installed.result
      this.fromInstall = installed
    } catch (err) {
      this.dispose()
      throw new Error(`cannot load ${address}: ${faultReason(err, { ...limits, timeout: budget })}`)
    }
  }

  /** Call into the isolate with a CPU budget (ms). Throws SandboxFault if the cell must end. */
  enter (budgetMs: number, op: string, a?: ivm.Transferable, b?: ivm.Transferable, c?: ivm.Transferable): EntryResult {
    let text: unknown
    try {
      text = this.control.applySync(undefined, [op, a, b, c], { timeout: Math.max(1, Math.ceil(budgetMs)) })
    } catch (err) {
      throw new SandboxFault((err as Error)?.message ?? String(err))
    }
    if (typeof text === 'string') this.hooks.entered(text.length)
    const entry = splitEntry(text)
    if (entry instanceof Malformed) throw new SandboxFault(entry.reason)
    return entry
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
