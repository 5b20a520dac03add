// The demo's start-up, shared by the interactive demo and the smoke tour: N nodes joined
// with an invite from the first, every node seeing the others, the counter example
// published through `stem publish` (the real CLI) and placed.
import { join } from 'node:path'
import type { PeersResponse } from '../../api/types.js'
import type { Progress } from '../progress.js'
import { followPlacement, placementGoal, type SpecCellListing } from '../placement.js'
import { REPO_ROOT, spawnDemoNode, type DemoNode } from './cloud.js'
import { poll, runStem } from './steps.js'

export const DEMO_APP = 'counter'
export const DEMO_MANIFEST = join(REPO_ROOT, 'examples', 'counter', 'app.yaml')
/** generous: a loaded 2-core machine starts a node in a few seconds */
const START_TIMEOUT = 90_000

export interface DemoCloud {
  nodes: DemoNode[]
  /** the counter's instances after the publish */
  cells: SpecCellListing[]
}

/** Starts the nodes, each added to `nodes` as soon as it is spawned (so a caller can stop them on failure or Ctrl-C). */
export async function startCloud (baseDir: string, count: number, nodes: DemoNode[], progress: Progress, signal: AbortSignal): Promise<DemoCloud> {
  progress.step(`starting node 1 of ${count}`)
  const track = (n: DemoNode): void => { nodes.push(n) }
  await spawnDemoNode(1, baseDir, ['start', '--mesh', 'demo'], track, signal)
  const { token } = await (await nodes[0].client()).get<{ token: string }>('/v1/invite', signal)
  // the joiners start side by side: each needs only the first node to join
  if (count > 1) progress.step(`starting node${count > 2 ? `s 2…${count}` : ' 2'} (joining with an invite from node 1)`)
  const joining = Array.from({ length: count - 1 }, async (_, k) => spawnDemoNode(k + 2, baseDir, ['join', token], track, signal))
  const settled = await Promise.allSettled(joining)
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  nodes.sort((a, b) => a.index - b.index)

  for (const n of nodes) {
    progress.step(`node ${n.index} finding the other ${count - 1} in the mesh`)
    await poll(async () => {
      const view = await (await n.client()).get<PeersResponse>('/v1/peers', signal)
      return nodes.every(o => o === n || view.peers.some(p => p.id === o.peerId))
    }, { timeout: START_TIMEOUT, what: `node ${n.index} to see the other nodes`, signal })
  }
  progress.done(`${count} nodes up, one mesh ("demo")`)

  // publish with the real CLI, and show its placement as `stem publish` does
  progress.step('publishing examples/counter/app.yaml through node 1')
  // the manifest code (yaml) loads on use: `stem demo` is in every command's start-up
  const { loadManifest } = await import('../../topology/manifest.js')
  const goal = placementGoal(await loadManifest(DEMO_MANIFEST, signal))
  const following = new AbortController()
  const publishing = runStem(['publish', DEMO_MANIFEST, '--data', nodes[0].dataDir, '--json'], signal)
    .finally(() => { following.abort() })
  await followPlacement(await nodes[0].client(), goal, progress, { timeout: START_TIMEOUT, signal: AbortSignal.any([signal, following.signal]) })
    .catch(err => { if (!following.signal.aborted) throw err })
  const published = await publishing
  if (published.code !== 0) throw new Error(`stem publish failed: ${published.stderr.trim().split('\n').pop() ?? `exit ${published.code}`}`)
  const result = JSON.parse(published.stdout) as { changed: boolean, cells: SpecCellListing[] }
  progress.done(`${result.changed ? 'published' : 'already published (unchanged)'}: ${DEMO_APP}, ${result.cells.map(c => `${c.address} on node ${nodeOf(nodes, c.node)?.index ?? '?'}`).join(', ')}`)
  return { nodes, cells: result.cells }
}

export function nodeOf (nodes: DemoNode[], peerId: string): DemoNode | undefined {
  return nodes.find(n => n.peerId === peerId)
}
