// `stem demo --smoke`: the demo's tour, unattended. Calls the counter through the gateway
// and the CLI, checks `stem peers/apps/cells`, kill -9s the node running the counter and
// checks its clone answers with every acknowledged increment, and that the killed node's
// cell host exited by itself. Throws a one-line reason on the first thing that is wrong.
import type { PeersResponse } from '../../api/types.js'
import type { AppCellsListing, AppListing } from '../../topology/app-table.js'
import type { Progress } from '../progress.js'
import type { DemoNode } from './cloud.js'
import { DEMO_APP, nodeOf, type DemoCloud } from './start-cloud.js'
import { poll, runStem, stemJson } from './steps.js'

const FAILOVER_TIMEOUT = 120_000

async function gatewayCount (node: DemoNode, signal: AbortSignal, by?: number): Promise<number> {
  const res = await fetch(`${node.gateway}/${DEMO_APP}/count`, by === undefined
    ? { signal }
    : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by }), signal })
  const body = await res.json() as { count?: unknown, error?: unknown }
  if (res.status !== 200 || typeof body.count !== 'number') throw new Error(`gateway ${res.status}: ${JSON.stringify(body)}`)
  return body.count
}

async function cliCall (node: DemoNode, args: string[], signal: AbortSignal): Promise<number> {
  const r = await runStem(['call', `${DEMO_APP}/counter`, ...args, '--data', node.dataDir], signal)
  if (r.code !== 0) throw new Error(`stem call ${args.join(' ')}: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`)
  return (JSON.parse(r.stdout) as { count: number }).count
}

function check (ok: boolean, reason: string): void {
  if (!ok) throw new Error(reason)
}

function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function smokeTour (cloud: DemoCloud, progress: Progress, signal: AbortSignal): Promise<void> {
  const { nodes } = cloud
  const first = nodes[0]

  progress.step('checking stem peers, apps, cells')
  const view = await stemJson<PeersResponse>(['peers', '--data', first.dataDir], signal)
  check(nodes.every(n => n === first || view.peers.some(p => p.id === n.peerId)), `stem peers on node 1 lists ${view.peers.length} peers, expected the other ${nodes.length - 1}`)
  const apps = await stemJson<AppListing[]>(['apps', '--data', first.dataDir], signal)
  const app = apps.find(a => a.app === DEMO_APP)
  check(app !== undefined, `stem apps does not list ${DEMO_APP}: ${JSON.stringify(apps)}`)
  check(app?.members.length === Math.min(3, nodes.length), `stem apps: ${DEMO_APP} has ${app?.members.length} group members, expected ${Math.min(3, nodes.length)}`)
  const cells = (await stemJson<AppCellsListing[]>(['cells', DEMO_APP, '--data', first.dataDir], signal))[0]?.cells ?? []
  check(cells.length === 1 && cells[0].state === 'transformed', `stem cells ${DEMO_APP}: expected one transformed instance, got ${JSON.stringify(cells)}`)
  const primary = nodeOf(nodes, cells[0].node)
  check(primary !== undefined, `stem cells: ${DEMO_APP} runs on ${cells[0].node}, not a demo node`)
  progress.done(`stem peers/apps/cells: ${nodes.length} nodes, ${DEMO_APP} led by node ${nodeOf(nodes, app?.leader ?? '')?.index ?? '?'}, running on node ${primary?.index}`)

  progress.step('calling the counter through the gateway and the CLI')
  const start = await gatewayCount(first, signal)
  check(await gatewayCount(first, signal, 5) === start + 5, 'POST /counter/count {"by":5} did not add 5')
  check(await cliCall(first, ['increment', '2'], signal) === start + 7, 'stem call counter/counter increment 2 did not add 2')
  let acknowledged = start + 7
  for (const n of nodes.slice(1)) acknowledged = await cliCall(n, ['increment', '1'], signal)
  check(acknowledged === start + 6 + nodes.length, `after increments from every node the count is ${acknowledged}, expected ${start + 6 + nodes.length}`)
  progress.done(`counter answers through the gateway and the CLI of every node (count ${acknowledged})`)

  // the app's Raft group (min(3, nodes) members) must keep a majority without the killed node
  if ((app?.members.length ?? 0) < 3 || primary === undefined || cells[0].clones.length === 0) {
    progress.done('failover skipped: it needs 3 nodes or more (a Raft majority without the killed node) and a clone')
    return
  }
  progress.step(`kill -9 node ${primary.index} (pid ${primary.pid}), which runs the counter`)
  process.kill(primary.pid, 'SIGKILL')
  await primary.exited
  const survivor = nodes.find(n => n !== primary && n.running()) as DemoNode
  const moved = await poll(async () => {
    const now = (await stemJson<AppCellsListing[]>(['cells', DEMO_APP, '--data', survivor.dataDir], signal))[0]?.cells ?? []
    progress.step(`waiting for the failover: ${now.map(c => `${c.address} ${c.state} on node ${nodeOf(nodes, c.node)?.index ?? '?'}`).join(', ')}`)
    return now.length === 1 && now[0].state === 'transformed' && now[0].node !== primary.peerId && now[0]
  }, { timeout: FAILOVER_TIMEOUT, what: `${DEMO_APP} to run again on a live node after the kill`, signal, interval: 500 })
  const after = await poll(async () => await cliCall(survivor, ['get'], signal), { timeout: 30_000, what: 'the counter to answer after the failover', signal })
  check(after === acknowledged, `after the failover the count is ${after}, expected ${acknowledged}: acknowledged increments were lost`)
  const viaGateway = await poll(async () => await gatewayCount(survivor, signal), { timeout: 30_000, what: `the gateway of node ${survivor.index} to answer`, signal })
  check(viaGateway === acknowledged, `the gateway of node ${survivor.index} says ${viaGateway}, expected ${acknowledged}`)
  await poll(async () => !groupAlive(primary.pid), { timeout: 30_000, what: `the cell host of the killed node ${primary.index} to exit by itself`, signal })
  progress.done(`failover: the counter runs on node ${nodeOf(nodes, moved.node)?.index ?? '?'} with all ${acknowledged} acknowledged increments; the killed node left no process`)
}
