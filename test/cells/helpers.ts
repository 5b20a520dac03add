// Shared test helpers for the cells layer: an owner key, bundles from source text,
// a runtime torn down after each suite.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { buildBundle } from '../../src/cells/bundle-build.js'
import type { CellBundle } from '../../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../../src/cells/limits.js'
import type { CellLimits } from '../../src/cells/limits.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'

export const MIB = 1024 * 1024

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'stem-cells-'))

  write (name: string, text: string): string {
    const file = join(this.path, name)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text)
    return file
  }

  remove (): void {
    rmSync(this.path, { recursive: true, force: true })
  }
}

export interface Bundler {
  owner: PrivateKey
  dir: TempDir
  /** bundle `source` (an ESM module) as app/cell */
  bundle: (address: string, source: string, limits?: Partial<CellLimits>, file?: string, keyed?: { idle: number }) => Promise<CellBundle>
}

export async function createBundler (): Promise<Bundler> {
  const owner = await createEd25519Key()
  const dir = new TempDir()
  let n = 0
  return {
    owner,
    dir,
    async bundle (address, source, limits = {}, file, keyed) {
      const [app, rest] = address.split('/')
      const cell = rest.split('#')[0]
      const entry = dir.write(file ?? `src${++n}/${cell}.js`, source)
      return buildBundle({ entry, app, cell, limits: { ...DEFAULT_LIMITS, ...limits }, owner, keyed })
    }
  }
}

export const COUNTER = `
export default class Counter {
  count = 0
  increment (by = 1) { this.count += by; return this.count }
  get () { return this.count }
  async both (other) { return this.count + await stem.ask(other, 'get') }
}
`

/** Resolves once process `pid` no longer exists. */
export function processGone (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch {
    return true
  }
}
