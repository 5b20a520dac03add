// Real `stem` processes inside the network namespaces built by scripts/netns/run.sh: each
// host namespace has its own loopback, so a node's control API and the CLI that talks to
// it run in the same namespace.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import type { PeersResponse } from '../../src/api/types.js'
import type { AppCellsListing } from '../../src/topology/app-table.js'
import { apiUrlOf, repoRoot, spawnStem, StemProcess, tempDataDir, type CliResult } from '../support/stem-process.js'
import { waitFor } from '../support/wait.js'

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
  /** the homes whose routers run.sh made symmetric NATs (--symmetric) */
  symmetric: number[]
}

/** the namespace layout from scripts/netns/run.sh, or why there is none */
export function netnsLayout (): NetnsLayout | string {
  const e = process.env
  if (e.STEM_NETNS_PREFIX == null || e.STEM_NETNS_LIB == null || e.STEM_NETNS_INET == null) return 'not inside scripts/netns/run.sh (STEM_NETNS_PREFIX unset)'
  return { prefix: e.STEM_NETNS_PREFIX, pubs: Number(e.STEM_NETNS_PUBS), homes: Number(e.STEM_NETNS_HOMES), impairment: e.STEM_NETNS_IMPAIRMENT ?? '', lib: e.STEM_NETNS_LIB, inet: e.STEM_NETNS_INET, symmetric: (e.STEM_NETNS_SYMMETRIC ?? '').split(',').filter(n => n !== '').map(Number) }
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


/** `stem <command>` in namespace ns, listening on all its interfaces (with a new data dir unless given one: a restart) */
export async function spawnStemIn (ns: string, command: string[], dataDir?: string): Promise<StemProcess> {
  return spawnStem(command, dataDir ?? await tempDataDir(), [], { listen: `/ip4/0.0.0.0/tcp/${STEM_PORT}`, prefix: ['ip', 'netns', 'exec', ns] })
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

/** the namespace of host `host` (pub1, home2 …) */
export const nsOf = (layout: NetnsLayout, host: string): string => `${layout.prefix}-${host}`

/**
 * A mesh of real nodes: `pub` starts it (a relay and STUN server that takes no cells), each
 * of `joiners` joins with its invite, or with `tokenOf(invite)` when given (e.g. a tampered
 * one). Nodes land in `nodes` as they spawn, so a failing test can dump their output.
 */
export async function startMesh (layout: NetnsLayout, nodes: Map<string, StemProcess>, pub: string, joiners: string[], tokenOf: (host: string, invite: string) => string = (_h, t) => t): Promise<void> {
  nodes.set(pub, await (await spawnStemIn(nsOf(layout, pub), ['start', '--cells', '0'])).ready())
  const invite = await stemIn(nsOf(layout, pub), ['invite', '--data', nodes.get(pub)!.dataDir])
  assert.equal(invite.code, 0, invite.stderr)
  for (const h of joiners) nodes.set(h, await spawnStemIn(nsOf(layout, h), ['join', tokenOf(h, invite.stdout.trim())]))
  await Promise.all(joiners.map(async h => nodes.get(h)!.ready()))
}

/** `stem peers --json` of host `host` */
export async function peersOf (layout: NetnsLayout, nodes: Map<string, StemProcess>, host: string): Promise<PeersResponse> {
  return stemJsonIn<PeersResponse>(nsOf(layout, host), ['peers', '--data', nodes.get(host)!.dataDir])
}

/** how `host` reaches `other` (SPEC §6 `path`), undefined when `other` is not in its peers */
export async function pathBetween (layout: NetnsLayout, nodes: Map<string, StemProcess>, host: string, other: string): Promise<string | undefined> {
  const id = nodes.get(other)!.peerId()
  return (await peersOf(layout, nodes, host)).peers.find(e => e.id === id)?.path
}

/** `stem_webrtc_upgrades_total` of host `host` from its /metrics, summed by result */
export async function webrtcUpgrades (layout: NetnsLayout, nodes: Map<string, StemProcess>, host: string): Promise<{ tried: number, succeeded: number, failed: number, text: string }> {
  const r = await httpIn(nsOf(layout, host), 'GET', `${await apiUrlOf(nodes.get(host)!.dataDir)}/metrics`)
  const counts = { tried: 0, succeeded: 0, failed: 0, text: '' }
  for (const m of r.body.matchAll(/^stem_webrtc_upgrades_total\{result="(tried|succeeded|failed)",reason="[^"]*"\} (\d+)$/gm)) {
    counts[m[1] as 'tried' | 'succeeded' | 'failed'] += Number(m[2])
    counts.text += `${m[0]}\n`
  }
  return counts
}

/**
 * Publishes the counter example from home `from` and waits until it runs on one of `homes`
 * with its clone on the other; returns the home without the counter (the caller) and one
 * increment asked from it, once the app's routes reached the caller.
 */
export async function counterAcross (layout: NetnsLayout, nodes: Map<string, StemProcess>, homes: [string, string]): Promise<{ caller: string, increment: () => Promise<number> }> {
  const data = (h: string): string => nodes.get(h)!.dataDir
  const published = await stemJsonIn<{ app: string }>(nsOf(layout, homes[1]), ['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', data(homes[1])])
  assert.equal(published.app, 'counter')
  const placed = await waitFor(async () => {
    const cells = (await stemJsonIn<AppCellsListing[]>(nsOf(layout, homes[0]), ['cells', 'counter', '--data', data(homes[0])]))[0]?.cells ?? []
    return cells.length === 1 && cells[0].state === 'transformed' && cells[0].clones.length === 1 && cells[0]
  }, { timeout: 120_000, what: 'the counter and its clone to be placed' })
  const caller = placed.node === nodes.get(homes[0])!.peerId() ? homes[1] : homes[0]
  // the first ask may still wait for the app's routes to reach the caller
  await waitFor(async () => (await stemIn(nsOf(layout, caller), ['call', 'counter/counter', 'get', '--data', data(caller)])).code === 0,
    { timeout: 60_000, what: `${caller} to reach the counter` })
  const increment = async (): Promise<number> => {
    const r = await stemIn(nsOf(layout, caller), ['call', 'counter/counter', 'increment', '1', '--data', data(caller)])
    assert.equal(r.code, 0, `stem call from ${caller}: ${r.stderr}`)
    return (JSON.parse(r.stdout) as { count: number }).count
  }
  return { caller, increment }
}

/** the last stderr lines of every node (what a failed test or bench prints) */
export function dumpNodes (nodes: Map<string, StemProcess>, lines = 40): void {
  for (const [host, p] of nodes) console.log(`--- ${host} (${p.running ? 'running' : `exited ${p.exitCode}`}) stderr:\n${p.stderr.split('\n').slice(-lines).join('\n')}`)
}

/** for an `afterEach`: the last stderr lines of every node, when the test failed */
export function dumpIfFailed (ctx: Mocha.Context, nodes: Map<string, StemProcess>): void {
  if (ctx.currentTest?.state === 'failed') dumpNodes(nodes)
}
