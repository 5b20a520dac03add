// `npm run chaos`: the multi-process fault test (issue #6). Five real `stem` processes on
// loopback run examples/counter (1 replica, 1 warm clone) under a steady stream of
// increments while, for `--duration` seconds, one fault at a time hits the mesh:
//
//   kill -9 of the primary's host, of the app leader's host, or of any node — restarted
//     later from the same data dir (it must rejoin and must not serve stale state);
//   a stall: SIGSTOP of the primary's host or of any node for longer than the capacity
//     expiry, then SIGCONT. On loopback without root this is the partition we can make:
//     the stalled node's TCP connections stay open but it answers nothing, so only
//     timeouts can tell — and it wakes up believing it is still in charge;
//   a whole-mesh restart (SIGINT to every node, then `stem start` on each) and a power cut
//     (kill -9 of every node at once, then `stem start` on each): every acknowledged
//     increment must come back from the disks (issue #14). Each node keeps its loopback
//     port, so the bootstrap addresses in the joiners' mesh.json stay true.
//
// `--kinds a,b` limits the faults to those kinds (kill-primary, kill-leader, kill-any,
// stall-primary, stall-any, restart-mesh, power-cut; default all).
//
// Figures (last line, exactly): `acked: N, lost: L, double-primaries: D, recovery p50/p99: X ms/Y ms`
//   acked            increments answered with a result
//   lost             acknowledged increments missing from the final count: the largest of
//                    acked − final, the acks that returned a count above the final one, and
//                    the acks that returned a count another ack returned too (a counter
//                    answers each increment with a count no other increment gets)
//   double-primaries answers that only a second, out-of-date primary can give: a `get`
//                    answering a count below one already acknowledged when it was sent,
//                    or an increment answering a count not above one (a single primary
//                    answers every increment with a count above all earlier ones). Every
//                    250 ms a `get` goes through every running node, so a node that still
//                    routes to an old primary — itself, after a stall — is asked too.
//                    The summary line also counts the sampling rounds in which two nodes
//                    had the instance transformed in their runtime (`status`), answering
//                    or not.
//   recovery         per fault: from the fault to the first successful increment that
//                    was sent after it
// Exit code 1 on any loss, double primary or fault the mesh did not recover from.
import { parseArgs } from 'node:util'
import { appendFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { createApiClient, type ApiClient } from '../src/api/client.js'
import type { StatusResponse } from '../src/api/types.js'
import { createHttpCaller } from '../src/messaging/call-client.js'
import type { CellCaller } from '../src/messaging/sdk.js'
import { newMessageId } from '../src/messaging/sdk.js'
import { readToken } from '../src/node/data-dir.js'
import { createRand } from '../src/raft/core/rand.js'
import type { AppCellsListing, AppListing } from '../src/topology/app-table.js'
import { percentile } from '../bench/support/stats.js'
import { repoRoot, spawnStem, stem, stopAll, tempDataDir, type StemProcess } from './support/stem-process.js'
import { freePort } from './support/stem-mesh.js'
import { waitFor } from './support/wait.js'

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '120' },
    seed: { type: 'string' },
    nodes: { type: 'string', default: '5' },
    clients: { type: 'string', default: '2' },
    /** write each node's log (stderr of all its incarnations) into this directory */
    logs: { type: 'string' },
    kinds: { type: 'string' }
  }
})
const durationS = Number(flags.duration)
const seed = flags.seed !== undefined ? Number(flags.seed) : Math.floor(Math.random() * 2 ** 31)
const nodeCount = Number(flags.nodes)
const clientCount = Number(flags.clients)
for (const [name, v, min] of [['--duration', durationS, 1], ['--seed', seed, 0], ['--nodes', nodeCount, 3], ['--clients', clientCount, 1]] as const) {
  if (!Number.isSafeInteger(v) || v < min) { console.error(`chaos: ${name}: expected a whole number ≥ ${min}`); process.exit(2) }
}

const KINDS = ['kill-primary', 'kill-leader', 'kill-any', 'stall-primary', 'stall-any', 'restart-mesh', 'power-cut'] as const
type FaultKind = typeof KINDS[number]
const kinds = (flags.kinds?.split(',') ?? KINDS) as FaultKind[]
for (const k of kinds) if (!KINDS.includes(k)) { console.error(`chaos: --kinds: unknown fault kind ${JSON.stringify(k)} (expected some of ${KINDS.join(', ')})`); process.exit(2) }

const APP = 'counter'
const ADDRESS = 'counter/counter#0'
const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')
const rand = createRand(seed)
const int = (min: number, max: number): number => min + Math.floor(rand() * (max - min + 1))
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]
const t0 = Date.now()
const say = (line: string): void => { console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}`) }

// ---- the mesh

interface Member {
  name: string
  dir: string
  /** its fixed loopback listen address (a whole-mesh restart needs the same addresses) */
  listen: string
  proc: StemProcess
  id: string
  api: ApiClient
  caller: CellCaller
  health: 'up' | 'down' | 'stalled'
}

async function connect (name: string, listen: string, proc: StemProcess): Promise<Member> {
  await proc.ready()
  const url = /^api: (\S+)$/m.exec(proc.stdout)?.[1] as string
  const token = await readToken(proc.dataDir)
  return { name, dir: proc.dataDir, listen, proc, id: proc.peerId(), api: createApiClient(url, token), caller: createHttpCaller({ url, token }), health: 'up' }
}

async function spawnMember (name: string, command: string[]): Promise<Member> {
  const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`
  return await connect(name, listen, spawnStem(command, await tempDataDir(), [], { listen }))
}

const members: Member[] = []
const up = (): Member[] => members.filter(m => m.health === 'up')
const byId = (id: string): Member | undefined => members.find(m => m.id === id)

async function startMesh (): Promise<void> {
  const first = await spawnMember('n0', ['start'])
  members.push(first)
  const invite = await stem(['invite', '--data', first.dir])
  if (invite.code !== 0) throw new Error(`stem invite: ${invite.stderr.trim()}`)
  members.push(...await Promise.all(Array.from({ length: nodeCount - 1 }, async (_, i) =>
    spawnMember(`n${i + 1}`, ['join', invite.stdout.trim()]))))
  await waitFor(async () => {
    for (const m of members) if ((await m.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length < nodeCount - 1) return false
    return true
  }, { timeout: 90_000, what: 'every node to see every other' })
}

/** where the instance runs and who leads the app, as a running node sees it */
async function whereabouts (): Promise<{ primary?: string, clones: string[], leader?: string }> {
  for (const m of up()) {
    try {
      const cells = (await m.api.get<AppCellsListing[]>(`/v1/cells?app=${APP}`, AbortSignal.timeout(2000)))[0]?.cells[0]
      const app = (await m.api.get<AppListing[]>('/v1/apps', AbortSignal.timeout(2000))).find(a => a.app === APP)
      return { primary: cells?.node, clones: cells?.clones ?? [], leader: app?.leader }
    } catch {}
  }
  return { clones: [] }
}

/** the instance runs transformed on a running node with a clone on another running node */
async function settled (): Promise<boolean> {
  const ids = new Set(up().map(m => m.id))
  for (const m of up()) {
    const cell = (await m.api.get<AppCellsListing[]>(`/v1/cells?app=${APP}`, AbortSignal.timeout(2000)))[0]?.cells[0]
    if (cell?.state !== 'transformed' || !ids.has(cell.node) || !cell.clones.some(c => ids.has(c) && c !== cell.node)) return false
  }
  return true
}

// ---- the workload

let acked = 0
let unknown = 0
let stopping = false
const ackedCounts = new Map<number, number>()
let regressions = 0
/** the highest count acknowledged so far */
let maxAcked = 0
let staleAnswers = 0
interface Fault { kind: string, node: string, at: number, recovered?: number }
const faults: Fault[] = []

async function client (): Promise<void> {
  let last = 0
  while (!stopping) {
    const targets = up()
    // every node down (a whole-mesh fault): nothing to send to
    if (targets.length === 0) { await delay(50); continue }
    const m = pick(targets)
    const sent = Date.now()
    const floor = maxAcked
    try {
      const result = await m.caller.ask(ADDRESS, 'increment', [1], { messageId: newMessageId(), deadline: sent + 5000 }) as { count: number }
      acked++
      if (result.count <= floor) { staleAnswers++; say(`DOUBLE PRIMARY: an increment through ${m.name} answered ${result.count}, ${floor} was acknowledged before it was sent`) }
      maxAcked = Math.max(maxAcked, result.count)
      ackedCounts.set(result.count, (ackedCounts.get(result.count) ?? 0) + 1)
      if (result.count <= last) { regressions++; say(`REGRESSION: an increment answered ${result.count} after ${last}`) }
      last = result.count
      const now = Date.now()
      for (const f of faults) if (f.recovered === undefined && f.at <= sent) f.recovered = now
      await delay(20)
    } catch {
      unknown++
      await delay(50)
    }
  }
}

// ---- double primaries

let overlapRounds = 0
let sampling = true

async function sampler (): Promise<void> {
  let lastOverlap = ''
  while (sampling) {
    const round = up()
    const running = await Promise.all(round.map(async m => {
      try {
        return (await m.api.get<StatusResponse>('/v1/status', AbortSignal.timeout(1000))).cells > 0
      } catch { return false }
    }))
    const where = round.filter((_, i) => running[i]).map(m => m.name).join(' and ')
    if (running.filter(r => r).length >= 2) {
      overlapRounds++
      if (where !== lastOverlap) say(`${ADDRESS} is transformed on ${where}`)
    }
    lastOverlap = where
    await Promise.all(round.map(async m => {
      const floor = maxAcked
      try {
        const { count } = await m.caller.ask(ADDRESS, 'get', [], { deadline: Date.now() + 1000 }) as { count: number }
        if (count < floor) { staleAnswers++; say(`DOUBLE PRIMARY: a get through ${m.name} answered ${count}, ${floor} was acknowledged before it was sent`) }
      } catch {}
    }))
    await delay(250)
  }
}

// ---- faults

async function keepLog (m: Member): Promise<void> {
  if (flags.logs === undefined) return
  await mkdir(flags.logs, { recursive: true })
  await appendFile(join(flags.logs, `${m.name}.log`), m.proc.stderr)
}

async function restart (m: Member): Promise<void> {
  await keepLog(m)
  const fresh = await connect(m.name, m.listen, spawnStem(['start'], m.dir, [], { listen: m.listen }))
  Object.assign(m, fresh)
}

/** SIGINT (graceful) or SIGKILL (a power cut) to every node at once, then `stem start` on each. */
async function wholeMesh (kind: 'restart-mesh' | 'power-cut'): Promise<void> {
  const fault: Fault = { kind, node: 'all', at: Date.now() }
  faults.push(fault)
  for (const m of members) m.health = 'down'
  for (const m of members) m.proc.signal(kind === 'power-cut' ? 'SIGKILL' : 'SIGINT')
  say(`${kind === 'power-cut' ? 'power cut: kill -9 of' : 'SIGINT to'} every node`)
  await Promise.all(members.map(async m => await m.proc.exited))
  say('every node exited')
  await delay(int(500, 2000))
  await Promise.all(members.map(async m => { await restart(m) }))
  say('restarted every node from its data dir')
  await waitFor(async () => await settled(), { timeout: 120_000, what: 'the app to settle after the fault' }).catch(() => {
    say('the app did not settle within 120 s')
  })
  await waitFor(() => fault.recovered !== undefined, { timeout: 60_000, what: 'recovery' }).catch(() => {})
  if (fault.recovered !== undefined) say(`recovered ${fault.recovered - fault.at} ms after the fault`)
}

async function injectFault (): Promise<void> {
  const kind = pick(kinds)
  if (kind === 'restart-mesh' || kind === 'power-cut') { await wholeMesh(kind); return }
  const where = await whereabouts()
  const targetId = kind.endsWith('primary') ? where.primary : kind === 'kill-leader' ? where.leader : undefined
  const target = (targetId !== undefined ? byId(targetId) : undefined) ?? pick(up())
  if (target.health !== 'up') return
  const role = [target.id === where.primary ? 'primary' : '', where.clones.includes(target.id) ? 'clone' : '', target.id === where.leader ? 'leader' : ''].filter(r => r !== '').join('+') || 'bystander'
  const fault: Fault = { kind: kind.startsWith('kill') ? 'kill -9' : 'stall', node: target.name, at: Date.now() }
  faults.push(fault)
  if (fault.kind === 'kill -9') {
    target.health = 'down'
    target.proc.signal('SIGKILL')
    await target.proc.exited
  } else {
    target.health = 'stalled'
    target.proc.signal('SIGSTOP')
  }
  say(`${fault.kind} ${target.name} (${role})`)
  const hold = fault.kind === 'stall' ? int(8000, 12_000) : int(2000, 8000)
  const heal = Date.now() + hold
  await waitFor(() => fault.recovered !== undefined || (fault.kind === 'kill -9' && Date.now() > heal), { timeout: 60_000, what: 'recovery' }).catch(() => {})
  await delay(Math.max(0, heal - Date.now()))
  if (fault.kind === 'kill -9') {
    await restart(target)
    say(`restarted ${target.name} from its data dir`)
  } else {
    target.proc.signal('SIGCONT')
    target.health = 'up'
    say(`resumed ${target.name}`)
  }
  // the fault is over when the instance and a clone run on live nodes again
  await waitFor(async () => await settled(), { timeout: 90_000, what: 'the app to settle after the fault' }).catch(() => {
    say('the app did not settle within 90 s')
  })
  if (fault.recovered !== undefined) say(`recovered ${fault.recovered - fault.at} ms after the fault`)
}

// ---- the run

let exitCode = 0
try {
  say(`seed ${seed}, ${nodeCount} nodes, ${clientCount} clients, ${durationS} s of faults; faults: ${kinds.join(', ')}`)
  await startMesh()
  say(`mesh of ${nodeCount} up: ${members.map(m => `${m.name}=${m.id.slice(-6)}`).join(' ')}`)
  const published = await stem(['publish', manifest, '--data', members[0].dir, '--json'])
  if (published.code !== 0) throw new Error(`stem publish: ${published.stderr.trim()}`)
  await waitFor(settled, { timeout: 60_000, what: 'the counter and its clone to run' })
  say('counter published')
  const clients = Array.from({ length: clientCount }, async () => client())
  const sampling$ = sampler()
  const end = Date.now() + durationS * 1000
  await delay(2000)
  while (Date.now() < end) {
    await injectFault()
    await delay(int(1000, 3000))
  }
  stopping = true
  await Promise.all(clients)
  sampling = false
  await sampling$

  // the final count, through every node: all must agree (a node serving stale state would not)
  const finals = await Promise.all(up().map(async m => {
    const r = await waitFor(async () => await m.caller.ask(ADDRESS, 'get', [], { deadline: Date.now() + 5000 }) as { count: number }, { timeout: 60_000, what: `the count through ${m.name}` })
    return r.count
  }))
  const final = Math.min(...finals)
  if (new Set(finals).size > 1) say(`STALE: the nodes answered different counts: ${finals.join(', ')}`)
  const above = [...ackedCounts].filter(([count]) => count > final).reduce((n, [, k]) => n + k, 0)
  const collisions = [...ackedCounts.values()].reduce((n, k) => n + k - 1, 0)
  const lost = Math.max(0, acked - final, above, collisions, new Set(finals).size > 1 ? Math.max(...finals) - final : 0)
  const duplicates = Math.max(0, final - acked - unknown)
  const recoveries = faults.filter(f => f.recovered !== undefined).map(f => (f.recovered as number) - f.at)
  const unrecovered = faults.length - recoveries.length
  const seen = [...new Set(faults.map(f => f.kind))]
  console.log(`faults: ${faults.length} (${seen.map(k => `${k}: ${faults.filter(f => f.kind === k).length}`).join(', ')}), unrecovered: ${unrecovered}; increments with no answer: ${unknown}, applied twice: ${duplicates}; final count ${final}; answers out of order: ${regressions}; rounds with the instance transformed on two nodes: ${overlapRounds}`)
  const fmt = (xs: number[], p: number): string => xs.length === 0 ? '-' : `${percentile(xs, p)} ms`
  console.log(`acked: ${acked}, lost: ${lost}, double-primaries: ${staleAnswers}, recovery p50/p99: ${fmt(recoveries, 0.5)}/${fmt(recoveries, 0.99)}`)
  if (lost > 0 || staleAnswers > 0 || unrecovered > 0 || acked === 0) exitCode = 1
} catch (err) {
  console.error(`chaos: ${(err as Error).message}`)
  exitCode = 1
} finally {
  stopping = true
  sampling = false
  for (const m of members) if (m.health === 'stalled') m.proc.signal('SIGCONT')
  for (const m of members) await keepLog(m).catch(() => {})
  await stopAll()
}
process.exit(exitCode)
