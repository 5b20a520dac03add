// `stem call APP/CELL METHOD [ARG]…`: ask a cell through the local node (POST /v1/call).
// Each argument is parsed as JSON, else taken as a string; the result is printed as JSON;
// a cell error exits 1 with its message.
import type { Command } from 'commander'
import { createHttpCaller } from '../../messaging/call-client.js'
import { newMessageId } from '../../messaging/sdk.js'
import { parseAddress } from '../../cells/address.js'
import { jsonBoundsError } from '../../util/bounded-json.js'
import { readToken } from '../../node/data-dir.js'
import { CliError, EXIT_USAGE, apiUrl, dataDirOf, type ClientOptions } from '../context.js'

/** JSON if it parses (within the nesting bound: deeper is a usage error), else the text itself. */
function parseArg (text: string, i: number): unknown {
  const tooDeep = jsonBoundsError(text, `argument ${i + 1}`)
  if (tooDeep !== undefined) throw new CliError(tooDeep, EXIT_USAGE)
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export function registerCall (program: Command): void {
  program.command('call')
    .description('ask a cell: each argument is JSON (else a string); prints the result as JSON')
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
      const values = args.map((a, i) => parseArg(a, i))
      const caller = createHttpCaller({ url: await apiUrl(flags), token: await readToken(dataDirOf(flags)) })
      const result = await caller.ask(address, method, values, { messageId: newMessageId() })
      process.stdout.write(JSON.stringify(result) + '\n')
    })
}
