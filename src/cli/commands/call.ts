// `stem call APP/CELL METHOD [ARG]…`: ask a cell through the local node (POST /v1/call).
// Each argument is parsed as JSON, else taken as a string; the result is printed as JSON;
// a cell error exits 1 with its message.
import type { Command } from 'commander'
import { createHttpCaller } from '../../messaging/call-client.js'
import { newMessageId } from '../../messaging/sdk.js'
import { parseAddress } from '../../cells/address.js'
import { readToken } from '../../node/data-dir.js'
import { CliError, EXIT_USAGE, apiUrl, dataDirOf, example, type ClientOptions } from '../context.js'

function parseArg (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export function registerCall (program: Command): void {
  program.command('call')
    .description('ask a cell: each argument is JSON (else a string); prints the result as JSON')
    .addHelpText('after', example('stem call counter/counter increment 5'))
    .argument('<address>', 'APP/CELL or APP/CELL#i')
    .argument('<method>', 'the cell method')
    .argument('[args...]', 'arguments')
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output (the result is always JSON)')
    .action(async (address: string, method: string, args: string[], flags: ClientOptions) => {
      try {
        parseAddress(address)
      } catch (err) {
        throw new CliError((err as Error).message, EXIT_USAGE)
      }
      const caller = createHttpCaller({ url: await apiUrl(flags), token: await readToken(dataDirOf(flags)) })
      const result = await caller.ask(address, method, args.map(parseArg), { messageId: newMessageId() })
      process.stdout.write(JSON.stringify(result) + '\n')
    })
}
