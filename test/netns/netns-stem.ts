// Real `stem` processes inside the network namespaces built by scripts/netns/run.sh: each
// host namespace has its own loopback, so a node's control API and the CLI that talks to
// it run in the same namespace.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { repoRoot, spawnStem, StemProcess, tempDataDir, type CliResult } from '../support/stem-process.js'

const stemBin = join(repoRoot, 'bin', 'stem.js')
/** the port every node listens on inside its own namespace */
export const STEM_PORT = 4017

export interface NetnsLayout {
  prefix: string
  pubs: number
  homes: number
  impairment: string
  lib: string
  /** the internet's /16 prefix, e.g. "7.77" */
  inet: string
}

/** the namespace layout from scripts/netns/run.sh, or why there is none */
export function netnsLayout (): NetnsLayout | string {
  const e = process.env
  if (e.STEM_NETNS_PREFIX == null || e.STEM_NETNS_LIB == null || e.STEM_NETNS_INET == null) return 'not inside scripts/netns/run.sh (STEM_NETNS_PREFIX unset)'
  return { prefix: e.STEM_NETNS_PREFIX, pubs: Number(e.STEM_NETNS_PUBS), homes: Number(e.STEM_NETNS_HOMES), impairment: e.STEM_NETNS_IMPAIRMENT ?? '', lib: e.STEM_NETNS_LIB, inet: e.STEM_NETNS_INET }
}

/** For a `before` hook: the layout, or the test skipped with the reason printed (not inside run.sh, or too few hosts). */
export function netnsLayoutOrSkip (ctx: Mocha.Context, needs: { pubs?: number, homes?: number } = {}): NetnsLayout {
  const l = netnsLayout()
  const reason = typeof l === 'string' ? l : l.pubs < (needs.pubs ?? 0) || l.homes < (needs.homes ?? 0) ? `needs ${needs.pubs ?? 0} public and ${needs.homes ?? 0} home hosts` : undefined
  if (reason !== undefined) { console.log(`netns: skipped: ${reason}`); ctx.skip() }
  return l as NetnsLayout
}

/** the internet address of public host N (pubN) */
export function pubAddress (layout: NetnsLayout, n: number): string {
  return `${layout.inet}.0.${10 + n}`
}


/** `stem <command>` in namespace ns, listening on all its interfaces */
export async function spawnStemIn (ns: string, command: string[]): Promise<StemProcess> {
  return spawnStem(command, await tempDataDir(), [], { listen: `/ip4/0.0.0.0/tcp/${STEM_PORT}`, prefix: ['ip', 'netns', 'exec', ns] })
}

/** the CLI, run to completion in namespace ns */
export async function stemIn (ns: string, args: string[]): Promise<CliResult> {
  return new Promise(resolve => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '--no-node-snapshot', stemBin, ...args], { env: { ...process.env, STEM_API: '' }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, stdout, stderr })
    })
  })
}

export async function stemJsonIn<T> (ns: string, args: string[]): Promise<T> {
  const r = await stemIn(ns, [...args, '--json'])
  if (r.code !== 0) throw new Error(`stem ${args.join(' ')} in ${ns} exited ${r.code}: ${r.stderr.trim()}`)
  return JSON.parse(r.stdout) as T
}

/** runs one function of scripts/netns/lib.sh (netns_partition, netns_heal, netns_impair …) */
export async function netnsCall (layout: NetnsLayout, fn: string, ...args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile('bash', ['-c', `. "$1"; NETNS_PREFIX="$2"; shift 2; "$@"`, 'netns', layout.lib, layout.prefix, fn, ...args], (err, _out, stderr) => {
      if (err != null) reject(new Error(`${fn} ${args.join(' ')}: ${stderr.trim()}`)); else resolve()
    })
  })
}


export interface HttpResult { status: number, body: string }

// a fetch run by a Node process inside the namespace; status 0 is a network error
const fetchScript = `const [method, url, body] = process.argv.slice(1)
fetch(url, { method, body: body || undefined, headers: body ? { 'content-type': 'application/json' } : {}, signal: AbortSignal.timeout(60000) })
  .then(async r => { process.stdout.write(r.status + '\\n' + await r.text()) })
  .catch(e => { process.stdout.write('0\\n' + e.message) })`

/** one HTTP request from namespace ns (e.g. a browser on a public host calling a gateway) */
export async function httpIn (ns: string, method: string, url: string, body?: unknown): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const args = ['netns', 'exec', ns, process.execPath, '-e', fetchScript, method, url, ...(body !== undefined ? [JSON.stringify(body)] : [])]
    execFile('ip', args, { timeout: 90_000 }, (err, stdout, stderr) => {
      if (err != null) { reject(new Error(`${method} ${url} in ${ns}: ${stderr.trim() || err.message}`)); return }
      const nl = stdout.indexOf('\n')
      resolve({ status: Number(stdout.slice(0, nl)), body: stdout.slice(nl + 1) })
    })
  })
}
