// The public methods of a bundle's class (its messages: what routes may target), found the
// way the runtime finds them: the module is loaded in a throwaway isolate (its top level
// runs, with a `stem` object that does nothing), and the default export's prototype chain
// is walked for functions, leaving out `constructor`, names starting with `_` or `#` and
// Object's own methods. The class is never constructed. `stem publish` checks its routes
// with it before anything is sent.
import type { CellLimits } from './limits.js'
import { LOAD_BUDGET_MS } from './host/sandbox.js'
import { isolateMemoryMiB } from './limits.js'

const LIST_METHODS = `
const Cls = globalThis.__stemModule.default
if (typeof Cls !== 'function' || !/^class\\b/.test(Function.prototype.toString.call(Cls))) throw new Error('the module must export a class as default')
const names = new Set(), seen = new Set()
for (let p = Cls.prototype; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
  for (const name of Object.getOwnPropertyNames(p)) {
    // the nearest definition decides, as in the runtime (a getter hides an inherited method)
    if (seen.has(name)) continue
    seen.add(name)
    const d = Object.getOwnPropertyDescriptor(p, name)
    if (name !== 'constructor' && name[0] !== '_' && typeof d.value === 'function') names.add(name)
  }
}
JSON.stringify([Cls.name, [...names].sort()])
`

const STUB_STEM = `
globalThis.stem = Object.freeze({
  self: '', ask: async () => null, tell () {}, log () {}, now: () => Date.now(),
  error: (status, message) => new Error(message), response: (status, body) => body
})
`

/** `[className, methods]` of the bundle's default export; throws a one-line reason if it does not load. */
export async function classMethods (code: string, limits: Pick<CellLimits, 'memory' | 'timeout'>): Promise<{ name: string, methods: string[] }> {
  const { default: ivm } = await import('isolated-vm')
  const isolate = new ivm.Isolate({ memoryLimit: isolateMemoryMiB(limits.memory) })
  try {
    const context = isolate.createContextSync()
    const timeout = Math.max(limits.timeout, LOAD_BUDGET_MS)
    isolate.compileScriptSync(STUB_STEM).runSync(context, { timeout })
    const module = isolate.compileModuleSync(code, { filename: 'cell.js' })
    module.instantiateSync(context, specifier => { throw new Error(`cells cannot import '${specifier}'`) })
    await module.evaluate({ timeout })
    await context.global.set('__stemModule', module.namespace.derefInto())
    const [name, methods] = JSON.parse(isolate.compileScriptSync(LIST_METHODS).runSync(context, { timeout }) as string) as [string, string[]]
    return { name: name === '' ? 'default class' : `class ${name}`, methods }
  } catch (err) {
    throw new Error(`cannot load the module: ${(err as Error).message.split('\n')[0]}`)
  } finally {
    isolate.dispose()
  }
}
