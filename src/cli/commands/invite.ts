import type { Command } from 'commander'
import type { InviteResponse } from '../../api/types.js'
import { apiClient, printJson, example, type ClientOptions } from '../context.js'

export function registerInvite (program: Command): void {
  program.command('invite')
    .description('print a one-line invite token for this node\'s mesh')
    .addHelpText('after', example('stem invite'))
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (flags: ClientOptions) => {
      const { token } = await (await apiClient(flags)).get<InviteResponse>('/v1/invite')
      if (flags.json === true) printJson({ token })
      else process.stdout.write(token + '\n')
    })
}
