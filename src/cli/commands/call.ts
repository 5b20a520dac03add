// `stem call APP/CELL METHOD [ARG]…`: ask a cell through the local node (POST /v1/call).
// Each argument is parsed as JSON, else taken as a string; the result is printed as JSON;
// a cell error exits 1 with its message, the cell and method, and the stack in the cell's
// sources below it.
import type { Command } from 'commander'
import { createHttpCaller } from '../../messaging/call-client.js'
import { newMessageId } from '../../messaging/sdk.js'
import { parseAddress } from '../../cells/address.js'
import { jsonBoundsError } from '../../util/bounded-json.js'
import type { CellErrorInfo } from '../../cells/reply-meta.js'
import { readToken } from '../../node/data-dir.js'
import { CliError, EXIT_USAGE, apiUrl, dataDirOf, example, type ClientOptions } from '../context.js'

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
    .addHelpText('after', example('stem call counter/counter increment 5'))
    .argument('<address>', 'APP/CELL, APP/CELL#i or APP/CELL/KEY (a keyed cell; percent-encode /, # and % in KEY)')
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
      let result
      try {
        result = await caller.ask(address, method, values, { messageId: newMessageId() })
      } catch (err) {
        // an error the cell threw: where, and its stack in the cell's sources, below the one-line error
        const cell = (err as { cellError?: CellErrorInfo }).cellError
        if (cell !== undefined) {
          const where = `${cell.cell}.${cell.method}${cell.status !== undefined ? `, status ${cell.status}` : ''}`
          process.stderr.write(`stem: ${(err as Error).message} (${where})\n${cell.stack !== undefined ? cell.stack.split('\n').map(l => `    ${l}\n`).join('') : ''}`)
          process.exitCode = 1
          return
        }
        throw err
      }
      process.stdout.write(JSON.stringify(result) + '\n')
    })
}
