// `stem demo` as a child process for tests: its banner parsed, the printed commands run
// as printed, and checks that no process it started is left.
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { waitFor } from './wait.js'
import { repoRoot } from './stem-process.js'

export const stemBin = join(repoRoot, 'bin', 'stem.js')

export interface Run { code: number | null, stdout: string, stderr: string }

export class DemoProcess {
  stdout = ''
  stderr = ''
  exitCode: number | null | undefined
  readonly exited: Promise<number | null>
  readonly child: ChildProcess

  constructor (args: string[]) {
    this.child = spawn(process.execPath, ['--no-node-snapshot', stemBin, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STEM_API: '', STEM_DATA: '' } })
    this.child.stdout?.on('data', (d: Buffer) => { this.stdout += d.toString() })
    this.child.stderr?.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.exited = new Promise(resolve => { this.child.on('exit', (code, signal) => { this.exitCode = code ?? (signal != null ? -1 : null); resolve(this.exitCode) }) })
  }

  async banner (): Promise<string> {
    return await waitFor(() => {
      if (this.exitCode !== undefined) throw new Error(`stem demo exited ${this.exitCode}: ${this.stderr.trim()}`)
      return this.stdout.includes('Ctrl-C stops everything.') && this.stdout
    }, { timeout: 150_000, what: 'the demo banner' })
  }
}

/** runs a shell line as printed (curl); without curl, the same request with fetch */
export async function runCurl (line: string): Promise<string> {
  if (existsSync('/usr/bin/curl') || existsSync('/bin/curl')) {
    return await new Promise((resolve, reject) => {
      execFile('sh', ['-c', line], { timeout: 30_000 }, (err, stdout) => { if (err != null) reject(err); else resolve(stdout) })
    })
  }
  const url = /(http:\/\/\S+)/.exec(line)?.[1] as string
  const body = /-d '([^']*)'/.exec(line)?.[1]
  const res = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return await res.text()
}

/** runs a printed `npx stem …` line; `npx` itself only when asked (it is slow), else bin/stem.js */
export async function runPrinted (line: string, viaNpx: boolean): Promise<Run> {
  const args = line.replace(/^npx stem /, '').split(/\s+/)
  const [file, argv] = viaNpx ? ['npx', ['stem', ...args]] : [process.execPath, ['--no-node-snapshot', stemBin, ...args]]
  return await new Promise(resolve => {
    execFile(file, argv, { cwd: repoRoot, timeout: 90_000, env: { ...process.env, STEM_API: '', STEM_DATA: '' } }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (err as { code?: number }).code ?? 1, stdout, stderr })
    })
  })
}

export function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** pids of live processes whose command line mentions `text` */
export async function processesMentioning (text: string): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(text)) found.push(Number(entry))
  }
  return found
}

export interface Banner { dashboard: string, curl: string[], commands: string[], kill?: number, pids: number[], dataDir: string, nodes: Array<{ node: number, pid: number, shortId: string }> }

export function parseBanner (text: string): Banner {
  const dashboard = /^Dashboard\s+(\S+)/m.exec(text)?.[1]
  assert.ok(dashboard !== undefined, 'the banner prints the dashboard URL')
  const dataDir = /--data (\S+)\/node-\d+$/m.exec(text)?.[1]
  assert.ok(dataDir !== undefined, 'the banner prints commands with --data')
  return {
    dashboard,
    dataDir,
    curl: [...text.matchAll(/^ {2}(curl .+)$/gm)].map(m => m[1]),
    commands: [...text.matchAll(/^ {2}(npx stem .+)$/gm)].map(m => m[1]),
    kill: ((k) => k === undefined ? undefined : Number(k))(/^ {2}kill -9 (\d+)$/m.exec(text)?.[1]),
    pids: [...text.matchAll(/^ {2}node \d+ {2}pid (\d+)/gm)].map(m => Number(m[1])),
    nodes: [...text.matchAll(/^ {2}node (\d+) {2}pid (\d+) +\S+(…\S{6})/gm)].map(m => ({ node: Number(m[1]), pid: Number(m[2]), shortId: m[3] }))
  }
}

