// `stem apps` and `stem cells [APP]`: the apps of the mesh and where their instances run (SPEC §6).
import type { Command } from 'commander'
import type { AppCellsListing, AppListing, CellListing } from '../../topology/app-table.js'
import { apiClient, printJson, example, type ClientOptions } from '../context.js'
import { table } from '../table.js'
import { nodeLabels } from '../node-labels.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import { specListing } from '../placement.js'
import { KEYS_METHOD } from '../../cells/keys.js'
import type { CallResponse } from '../../messaging/call-client.js'

export function registerApps (program: Command): void {
  program.command('apps')
    .description('the apps of the mesh: owner, raft leader, term and members')
    .addHelpText('after', example('stem apps --json'))
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions) => {
      const client = await apiClient(flags)
      const apps = await client.get<AppListing[]>('/v1/apps')
      if (flags.json === true) { printJson(apps); return }
      if (apps.length === 0) { process.stdout.write('no apps\n'); return }
      const label = await nodeLabels(client)
      process.stdout.write(table([['APP', 'OWNER', 'LEADER', 'TERM', 'MEMBERS'], ...apps.map(a => [a.app, shortPeerId(a.owner), a.leader === '' ? '-' : label(a.leader), String(a.term), a.members.map(label).join(',')])]))
    })

  program.command('cells')
    .description('where each cell instance of the apps (or of APP) runs')
    .addHelpText('after', example('stem cells counter'))
    .argument('[app]', 'only this app')
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (app: string | undefined, flags: ClientOptions) => {
      const query = app === undefined ? '' : `?app=${encodeURIComponent(app)}`
      const client = await apiClient(flags)
      const apps = await client.get<AppCellsListing[]>(`/v1/cells${query}`)
      // for one app, each keyed shard's keys (asked of its primary)
      const keys = app === undefined ? new Map<string, ShardKeys>() : await shardKeys(apps, client.post)
      if (flags.json === true) {
        printJson(apps.map(a => ({ app: a.app, cells: a.cells.map(c => ({ ...specListing(c), ...keyCounts(keys.get(c.address)) })), ...(a.rollbacks.length > 0 ? { rollbacks: a.rollbacks } : {}), ...(a.autoscale?.length > 0 ? { autoscale: a.autoscale } : {}) })))
        return
      }
      const label = await nodeLabels(client)
      const rows = apps.flatMap(a => a.cells.map(c => [c.address, label(c.node), stateText(c), c.clones.map(label).join(',') || '-', ...(keys.size > 0 ? [keysText(keys.get(c.address))] : [])]))
      if (rows.length === 0) { process.stdout.write('no cells\n'); return }
      process.stdout.write(table([['ADDRESS', 'NODE', 'STATE', 'CLONES', ...(keys.size > 0 ? ['ACTIVE KEYS'] : [])], ...rows]))
      for (const a of apps) for (const r of a.rollbacks ?? []) process.stdout.write(`${a.app}/${r.cell}: last rollout rolled back: ${r.error}\n`)
      for (const a of apps) for (const s of a.autoscale ?? []) process.stdout.write(`${a.app}/${s.cell}: autoscale ${s.min}..${s.max} replicas by lag (grows past ${s.lag} records): ${s.replicas} now\n`)
    })
}

/** an instance still on an older revision than the manifest's (a rollout under way) says so; a failed one says why and since when */
function stateText (c: CellListing): string {
  if (c.state === 'failed' && c.reason !== undefined) return `failed since ${new Date(c.since ?? 0).toISOString()}: ${c.reason}`
  if ((c.state === 'recovering' || c.state === 'lost') && c.reason !== undefined) return `${c.state}: ${c.reason}`
  return c.state === 'transformed' && c.revision !== undefined && !c.current ? 'transformed (older revision)' : c.state
}

/** a keyed shard's keys: how many it stores, and the active ones (a message within its idle time) */
interface ShardKeys { stored: number, active: string[] }

/** The keys of every keyed shard of the listing that answers (other cells refuse KEYS_METHOD: left out). */
async function shardKeys (apps: AppCellsListing[], post: <T>(path: string, body: unknown) => Promise<T>): Promise<Map<string, ShardKeys>> {
  const out = new Map<string, ShardKeys>()
  const serving = apps.flatMap(a => a.cells).filter(c => c.state === 'transformed')
  await Promise.all(serving.map(async c => {
    const answer = await post<CallResponse>('/v1/call', { address: c.address, method: KEYS_METHOD, args: [] }).catch(() => undefined)
    if (answer !== undefined && 'result' in answer) out.set(c.address, answer.result as ShardKeys)
  }))
  return out
}

function keyCounts (k: ShardKeys | undefined): { keys?: { stored: number, active: number } } {
  return k === undefined ? {} : { keys: { stored: k.stored, active: k.active.length } }
}

/** up to 5 active keys, then how many more */
function keysText (k: ShardKeys | undefined): string {
  if (k === undefined) return '-'
  const shown = k.active.slice(0, 5).map(key => JSON.stringify(key)).join(',')
  return `${k.active.length}${k.active.length > 0 ? ` ${shown}${k.active.length > 5 ? ',…' : ''}` : ''} (of ${k.stored})`
}
