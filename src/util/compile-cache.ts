// V8's code cache for the modules of Stem and its dependencies (Node's compile cache): a
// node, a cell host or a CLI call compiles them once, and later starts load the compiled
// code instead (README "Performance"). It lives beside the install (node_modules/.cache),
// not in a shared /tmp where another local user could plant code for it to run; where that
// folder cannot be written, Node goes on without a cache.
import { enableCompileCache } from 'node:module'
import { fileURLToPath } from 'node:url'

/** <stem>/node_modules/.cache/stem-compile (this file runs as dist/src/util/compile-cache.js) */
export const COMPILE_CACHE_DIR = fileURLToPath(new URL('../../../node_modules/.cache/stem-compile', import.meta.url))

/** Caches the compiled code of every module this process loads from now on. */
export function useCompileCache (): void {
  enableCompileCache(COMPILE_CACHE_DIR)
}
