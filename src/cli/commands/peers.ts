import type { Command } from 'commander'
import type { PeerEntry, PeersResponse, StatusResponse } from '../../api/types.js'
import { formatSize } from '../../util/units.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import { apiClient, printJson, example, type ClientOptions } from '../context.js'
import { table } from '../table.js'
import { nodeLabel } from '../node-labels.js'

function row (p: PeerEntry, now: number, self: boolean): string[] {
  return [self ? '*' : '', nodeLabel(p), String(p.capacity.cpu), formatSize(p.capacity.memory), String(p.capacity.cells),
    `${p.free.cpu}/${formatSize(p.free.memory)}/${p.free.cells}`,
    self ? '-' : p.connected ? 'yes' : 'no', self ? '-' : p.path ?? '-', self ? '-' : `${Math.max(0, Math.round((now - p.lastSeen) / 1000))}s ago`]
}

/** the table `stem peers` prints: this node first, marked `*`, then its peers */
export function peersTable (view: PeersResponse, now: number): string {
  return table([['', 'PEER', 'CPU', 'MEMORY', 'CELLS', 'FREE cpu/mem/cells', 'CONNECTED', 'PATH', 'SEEN'],
    row(view.self, now, true), ...view.peers.map(p => row(p, now, false))]) + '* this node\n'
}

export function registerPeers (program: Command): void {
  program.command('peers')
    .description('the capacity view: this node (marked *) and every peer of the mesh, and what each offers')
    .addHelpText('after', example('stem peers --json'))
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions) => {
      const view = await (await apiClient(flags)).get<PeersResponse>('/v1/peers')
      if (flags.json === true) { printJson(view); return }
      process.stdout.write(peersTable(view, Date.now()))
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
        `peer id: ${shortPeerId(s.id)}`,
        ...(s.name !== undefined ? [`name: ${s.name}`] : []),
        `mesh: ${s.mesh}`,
        ...s.addrs.map(a => `listening: ${a}`),
        `contributing: cpu ${s.capacity.cpu}, memory ${formatSize(s.capacity.memory)}, cells ${s.capacity.cells}`,
        `free: cpu ${s.free.cpu}, memory ${formatSize(s.free.memory)}, cells ${s.free.cells}`,
        `connections: ${s.connections.length}`,
        `cells: ${s.cells}, apps: ${s.apps.length}`
      ].join('\n') + '\n')
    })
}
