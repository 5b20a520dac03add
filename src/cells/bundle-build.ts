// Build a bundle from a .js/.ts entry with esbuild: one ESM module with npm imports
// inlined. Node built-ins are refused with an error naming the importing file, since
// cells have no Node API (SPEC §4).
import { build } from 'esbuild'
import type { Plugin } from 'esbuild'
import { builtinModules } from 'node:module'
import { basename, relative } from 'node:path'
import { signBundle } from './bundle.js'
import type { CellBundle } from './bundle.js'
import type { CellLimits } from './limits.js'
import type { PrivateKey } from '../wire/keys.js'

export interface BuildBundleOptions {
  entry: string
  app: string
  cell: string
  limits: CellLimits
  owner: PrivateKey
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

/** Compile the entry to one ESM module. Throws a one-line error on a build failure. */
export async function bundleCode (entry: string): Promise<string> {
  let result
  try {
    result = await build({
      entryPoints: [entry],
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
    const errors = (err as { errors?: Array<{ text: string }> }).errors
    throw new Error(errors != null && errors.length > 0 ? errors[0].text : `cannot bundle ${entry}: ${(err as Error).message}`)
  }
  return result.outputFiles[0].text
}

export async function buildBundle (options: BuildBundleOptions): Promise<CellBundle> {
  const code = await bundleCode(options.entry)
  return signBundle({ app: options.app, cell: options.cell, entry: basename(options.entry), code, limits: options.limits }, options.owner)
}
