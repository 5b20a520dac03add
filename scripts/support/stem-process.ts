// Real `stem` processes for multi-process tests, `npm run chaos` and the benches: spawned
// with bin/stem.js's flags (--no-node-snapshot --max-semi-space-size=1), each with its own temp data dir, ephemeral
// ports, cleaned up by `stopAll`.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from './wait.js'
import { NODE_FLAGS } from '../../src/util/node-flags.js'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const stemBin = join(repoRoot, 'bin', 'stem.js')

export interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs a program to completion (killed after 60 s): its exit code, null if it was killed. */
export async function runToEnd (file: string, args: string[], options: { env?: NodeJS.ProcessEnv, cwd?: string } = {}): Promise<CliResult> {
  return new Promise(resolve => {
    execFile(file, args, { env: options.env ?? process.env, cwd: options.cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, stdout, stderr })
    })
  })
}

/** Runs the real CLI to completion. */
export async function stem (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return await runToEnd(process.execPath, ['--no-node-snapshot', stemBin, ...args], { env: { ...process.env, ...env } })
}

/** `stem <command> --json` parsed, failing with its stderr if it did not succeed. */
export async function stemJson<T> (args: string[]): Promise<T> {
  const r = await stem([...args, '--json'])
  if (r.code !== 0) throw new Error(`stem ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
  return JSON.parse(r.stdout) as T
}

export class StemProcess {
  stdout = ''
  stderr = ''
  exited: Promise<number | null>
  exitCode: number | null | undefined

  constructor (readonly dataDir: string, readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => { this.stdout += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.exited = new Promise(resolve => { child.on('exit', code => { this.exitCode = code; resolve(code) }) })
  }

  get running (): boolean { return this.exitCode === undefined }

  /** the peer id line printed by `stem start` */
  peerId (): string {
    const m = /^peer id: (\S+)$/m.exec(this.stdout)
    if (m == null) throw new Error('no peer id printed yet')
    return m[1]
  }

  async ready (): Promise<this> {
    await waitFor(() => {
      if (!this.running) throw new Error(`stem exited ${this.exitCode}: ${this.stderr.trim()}`)
      return /^api: http/m.test(this.stdout)
    }, { timeout: 60_000, what: `stem in ${this.dataDir} to start` })
    return this
  }

  signal (signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal)
  }
}

const live = new Set<StemProcess>()
/** processes that exited by themselves with an error code (a crash), until stopAll */
const crashed = new Set<StemProcess>()
const dirs: string[] = []

export async function tempDataDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-node-'))
  dirs.push(dir)
  return dir
}

export interface SpawnStemOptions {
  /** libp2p listen address (default an ephemeral loopback port) */
  listen?: string
  /** a command the node runs under, e.g. `['ip', 'netns', 'exec', ns]` */
  prefix?: string[]
  /** written to the node's stdin, which then closes (default: no stdin) */
  stdin?: string
  /** environment variables besides this process's */
  env?: Record<string, string>
}

/** Spawns `stem <command> …` with a data dir and ephemeral listen/API ports. */
export function spawnStem (command: string[], dataDir: string, extra: string[] = [], options: SpawnStemOptions = {}): StemProcess {
  const argv = [process.execPath, ...NODE_FLAGS, stemBin, ...command, '--data', dataDir, '--listen', options.listen ?? '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', ...extra]
  const [file, ...args] = [...(options.prefix ?? []), ...argv]
  const child = spawn(file, args, {
    stdio: [options.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, STEM_API: '', ...options.env }
  })
  if (options.stdin !== undefined) child.stdin?.end(options.stdin)
  const p = new StemProcess(dataDir, child)
  live.add(p)
  void p.exited.then(code => {
    live.delete(p)
    if (code !== null && code !== 0) crashed.add(p)
  })
  return p
}

export async function apiUrlOf (dataDir: string): Promise<string> {
  return (JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8')) as { url: string }).url
}

/** the processes spawned here that have not exited */
export function liveStems (): StemProcess[] {
  return [...live]
}

/** the processes spawned here that exited by themselves with an error code since the last stopAll */
export function crashedStems (): StemProcess[] {
  return [...crashed]
}

export async function stopAll (): Promise<void> {
  crashed.clear()
  for (const p of live) p.signal('SIGKILL')
  await Promise.all([...live].map(async p => p.exited))
  await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
}
