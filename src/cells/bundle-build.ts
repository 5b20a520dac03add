// Build a bundle from a .js/.ts entry with esbuild: one ESM module with npm imports
// inlined and an inline source map (sources relative to the entry's directory, without
// their contents), so a cell error's stack names the original file:line. Node built-ins
// are refused with an error naming the importing file, since cells have no Node API
// (SPEC §4). A build error names file:line:column and shows the source line.
import { build } from 'esbuild'
import type { Plugin } from 'esbuild'
import { builtinModules } from 'node:module'
import { basename, dirname, relative, resolve } from 'node:path'
import { signBundle } from './bundle.js'
import type { CellBundle } from './bundle.js'
import type { CellLimits } from './limits.js'
import type { PrivateKey } from '../wire/keys.js'
import { withKeyedExport } from './keys.js'

export interface BuildBundleOptions {
  entry: string
  app: string
  cell: string
  limits: CellLimits
  owner: PrivateKey
  /** a keyed cell (SPEC §4): its idle time, ms; the bundle then exports KEYED_EXPORT (keys.ts) */
  keyed?: { idle: number }
}

const builtins = new Set(builtinModules)

function isBuiltin (specifier: string): boolean {
  return specifier.startsWith('node:') || builtins.has(specifier) || builtins.has(specifier.split('/')[0])
}

const refuseBuiltins: Plugin = {
  name: 'stem-refuse-node-builtins',
  setup (b) {
    b.onResolve({ filter: /.*/ }, args => {
      if (args.kind === 'entry-point' || !isBuiltin(args.path)) return undefined
      const importer = args.importer.includes('node_modules') ? relative(process.cwd(), args.importer) : basename(args.importer)
      return { errors: [{ text: `${importer} imports node built-in '${args.path.replace(/^node:/, '')}': cells cannot use Node APIs` }] }
    })
  }
}

/** relative to the working directory when under it, else absolute */
function shownPath (file: string): string {
  const rel = relative(process.cwd(), file)
  return rel.startsWith('..') ? file : rel
}

interface BuildMessage {
  text: string
  location?: { file: string, line: number, column: number, lineText: string } | null
}

/** `file:line:column: text`, then the source line and a caret under the column */
export function formatBuildError (error: BuildMessage): string {
  const at = error.location
  if (at == null) return error.text
  const gutter = `    ${at.line} | `
  return `${at.file}:${at.line}:${at.column + 1}: ${error.text}\n${gutter}${at.lineText}\n${' '.repeat(gutter.length + at.column)}^`
}

/** Compile the entry to one ESM module. Throws an error naming file:line:column (then the source line) on a build failure. */
export async function bundleCode (entry: string): Promise<string> {
  let result
  const path = resolve(entry)
  try {
    result = await build({
      entryPoints: [path],
      absWorkingDir: dirname(path),
      sourcemap: 'inline',
      sourcesContent: false,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'neutral',
      mainFields: ['module', 'main'],
      conditions: ['import', 'default'],
      target: 'es2022',
      logLevel: 'silent',
      plugins: [refuseBuiltins]
    })
  } catch (err) {
    const errors = (err as { errors?: BuildMessage[] }).errors
    if (errors == null || errors.length === 0) throw new Error(`cannot bundle ${entry}: ${(err as Error).message}`)
    const first = errors[0]
    // esbuild names files relative to absWorkingDir; the user's shell is elsewhere
    const location = first.location != null ? { ...first.location, file: shownPath(resolve(dirname(path), first.location.file)) } : first.location
    throw new Error(formatBuildError({ text: first.text, location }))
  }
  return result.outputFiles[0].text
}

export async function buildBundle (options: BuildBundleOptions): Promise<CellBundle> {
  const bundled = await bundleCode(options.entry)
  const code = options.keyed === undefined ? bundled : withKeyedExport(bundled, options.keyed.idle)
  return signBundle({ app: options.app, cell: options.cell, entry: basename(options.entry), code, limits: options.limits }, options.owner)
}
