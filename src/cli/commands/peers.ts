import type { Command } from 'commander'
import type { PeerEntry, PeersResponse, StatusResponse } from '../../api/types.js'
import { formatSize } from '../../util/units.js'
import { apiClient, printJson, example, type ClientOptions } from '../context.js'
import { table } from '../table.js'

function row (p: PeerEntry, now: number): string[] {
  return [p.id, String(p.capacity.cpu), formatSize(p.capacity.memory), String(p.capacity.cells),
    `${p.free.cpu}/${formatSize(p.free.memory)}/${p.free.cells}`, p.connected ? 'yes' : 'no', `${Math.max(0, Math.round((now - p.lastSeen) / 1000))}s ago`]
}

export function registerPeers (program: Command): void {
  program.command('peers')
    .description('the capacity view: every peer of the mesh and what it offers')
    .addHelpText('after', example('stem peers --json'))
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions) => {
      const view = await (await apiClient(flags)).get<PeersResponse>('/v1/peers')
      if (flags.json === true) { printJson(view); return }
      const now = Date.now()
      process.stdout.write(table([['PEER', 'CPU', 'MEMORY', 'CELLS', 'FREE cpu/mem/cells', 'CONNECTED', 'SEEN'], ...view.peers.map(p => row(p, now))]))
    })

  program.command('status')
    .description('this node\'s summary')
    .addHelpText('after', example('stem status'))
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions) => {
      const s = await (await apiClient(flags)).get<StatusResponse>('/v1/status')
      if (flags.json === true) { printJson(s); return }
      process.stdout.write([
        `peer id: ${s.id}`,
        `mesh: ${s.mesh}`,
        ...s.addrs.map(a => `listening: ${a}`),
        `contributing: cpu ${s.capacity.cpu}, memory ${formatSize(s.capacity.memory)}, cells ${s.capacity.cells}`,
        `free: cpu ${s.free.cpu}, memory ${formatSize(s.free.memory)}, cells ${s.free.cells}`,
        `connections: ${s.connections.length}`,
        `cells: ${s.cells}, apps: ${s.apps.length}`
      ].join('\n') + '\n')
    })
}
