import type { Command } from 'commander'
import type { ContributeRequest, ContributeResponse } from '../../api/types.js'
import { formatSize } from '../../util/units.js'
import { apiClient, checkMemory, CliError, EXIT_USAGE, numberOption, printJson, sizeOption, example, type ClientOptions } from '../context.js'

export function registerContribute (program: Command): void {
  program.command('contribute')
    .description('change what the running node contributes, live')
    .addHelpText('after', example('stem contribute --memory 1GiB --cells 30'))
    .option('--cpu <n>', 'cores', numberOption('--cpu', false))
    .option('--memory <size>', 'memory, e.g. 1GiB', sizeOption('--memory'))
    .option('--cells <n>', 'cell slots', numberOption('--cells', true))
    .option('--force', 'contribute --memory even if it is more than this machine has')
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions & ContributeRequest & { force?: boolean }) => {
      // checked against this machine: the node the CLI drives runs here (its API is on loopback)
      checkMemory(flags)
      const change: ContributeRequest = {}
      if (flags.cpu != null) change.cpu = flags.cpu
      if (flags.memory != null) change.memory = flags.memory
      if (flags.cells != null) change.cells = flags.cells
      if (Object.keys(change).length === 0) throw new CliError('nothing to change: give --cpu, --memory and/or --cells', EXIT_USAGE)
      const result = await (await apiClient(flags)).post<ContributeResponse>('/v1/contribute', change)
      if (flags.json === true) { printJson(result); return }
      const c = result.capacity
      process.stdout.write(`contributing: cpu ${c.cpu}, memory ${formatSize(c.memory)}, cells ${c.cells}\n`)
    })
}
