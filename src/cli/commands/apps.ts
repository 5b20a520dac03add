// `stem apps` and `stem cells [APP]`: the apps of the mesh and where their instances run (SPEC §6).
import type { Command } from 'commander'
import type { AppCellsListing, AppListing, CellListing } from '../../topology/app-table.js'
import { apiClient, printJson, example, type ClientOptions } from '../context.js'
import { table } from '../table.js'
import { nodeLabels } from '../node-labels.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import { specListing } from '../placement.js'

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
      if (flags.json === true) { printJson(apps.map(a => ({ app: a.app, cells: a.cells.map(specListing), ...(a.rollbacks.length > 0 ? { rollbacks: a.rollbacks } : {}) }))); return }
      const label = await nodeLabels(client)
      const rows = apps.flatMap(a => a.cells.map(c => [c.address, label(c.node), stateText(c), c.clones.map(label).join(',') || '-']))
      if (rows.length === 0) { process.stdout.write('no cells\n'); return }
      process.stdout.write(table([['ADDRESS', 'NODE', 'STATE', 'CLONES'], ...rows]))
      for (const a of apps) for (const r of a.rollbacks ?? []) process.stdout.write(`${a.app}/${r.cell}: last rollout rolled back: ${r.error}\n`)
    })
}

/** an instance still on an older revision than the manifest's (a rollout under way) says so; a failed one says why and since when */
function stateText (c: CellListing): string {
  if (c.state === 'failed' && c.reason !== undefined) return `failed since ${new Date(c.since ?? 0).toISOString()}: ${c.reason}`
  return c.state === 'transformed' && c.revision !== undefined && !c.current ? 'transformed (older revision)' : c.state
}
