// What `stem dev` watches and when it acts: source files under a few directories (the
// manifest's, and each cell entry's), and a debounced runner that turns a burst of saves
// (an editor writing a temp file, renaming it, touching the original) into one run, never
// two at once, and one more run after a run if files changed during it.
import { watch, type FSWatcher } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

/** files whose change means a republish: code esbuild bundles, and manifests */
const SOURCE = /\.(?:[cm]?[jt]sx?|json|ya?ml)$/
/** never sources of a cell: dependencies, VCS and editor droppings */
const IGNORED = /(?:^|[\\/])(?:node_modules|\.git)(?:[\\/]|$)|(?:~|\.swp|\.swx|\.tmp)$|(?:^|[\\/])\.#/

/** the smallest set of directories covering `paths`' directories (a nested one is dropped) */
export function watchRoots (files: string[]): string[] {
  const dirs = [...new Set(files.map(f => dirname(resolve(f))))].sort((a, b) => a.length - b.length)
  const roots: string[] = []
  for (const d of dirs) if (!roots.some(r => d === r || d.startsWith(r + sep))) roots.push(d)
  return roots
}

export function isWatchedSource (path: string): boolean {
  return SOURCE.test(path) && !IGNORED.test(path)
}

/** Watches `roots` recursively; calls `onChange` with the path of each changed source file. */
export function watchSources (roots: string[], onChange: (path: string) => void): { close: () => void } {
  const watchers: FSWatcher[] = roots.map(root => watch(root, { recursive: true }, (_event, name) => {
    if (name == null) return
    const path = join(root, name.toString())
    if (isWatchedSource(relative(root, path))) onChange(path)
  }))
  return { close: () => { for (const w of watchers) w.close() } }
}

export interface DebouncedRunner {
  /** something changed: run after `quietMs` without further changes */
  changed: () => void
  stop: () => void
}

export function createDebouncedRunner (run: () => Promise<void>, quietMs: number): DebouncedRunner {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let again = false
  let stopped = false
  const start = (): void => {
    timer = undefined
    if (stopped) return
    if (running !== undefined) { again = true; return }
    running = run().finally(() => {
      running = undefined
      if (again && !stopped) { again = false; start() }
    })
  }
  return {
    changed: () => {
      if (stopped) return
      clearTimeout(timer)
      timer = setTimeout(start, quietMs)
    },
    stop: () => { stopped = true; clearTimeout(timer); timer = undefined }
  }
}
