// `stem stream APP/STREAM [--group CELL --reset OFFSET|earliest|latest] [--json]`: each
// partition's offsets (base: oldest kept, next: the next record's) and each consumer
// group's acknowledged offset and lag; with --reset, moves the group's cursor on every
// partition (a broadcast consumer's groups `cell#i` all move), so it gets the records from
// there again: the consumer's own cursor follows by the reset generation. A dead-letter
// stream is shown the same way: `stem stream shop/orders.dead`.
import type { Command } from 'commander'
import { createHttpCaller } from '../../messaging/call-client.js'
import { newMessageId } from '../../messaging/sdk.js'
import { parseStreamAddress, partitionCell } from '../../cells/streams/partition.js'
import type { PartitionInfo } from '../../cells/streams/partition-code.js'
import { readToken } from '../../node/data-dir.js'
import { CliError, EXIT_USAGE, apiUrl, dataDirOf, example, printJson, type ClientOptions } from '../context.js'
import { table } from '../table.js'

interface StreamFlags extends ClientOptions { group?: string, reset?: string }

/** `earliest`, `latest` or a whole offset ≥ 0; else a usage error */
export function parseResetTarget (text: string): 'earliest' | 'latest' | number {
  if (text === 'earliest' || text === 'latest') return text
  if (/^\d{1,15}$/.test(text)) return Number(text)
  throw new CliError(`--reset: expected an offset, earliest or latest, got ${JSON.stringify(text.slice(0, 40))}`, EXIT_USAGE)
}

export function registerStream (program: Command): void {
  program.command('stream')
    .description('a stream\'s partitions, offsets and lag per consumer group; --group CELL --reset moves a group\'s cursor')
    .addHelpText('after', example('stem stream shop/orders --group worker --reset earliest'))
    .argument('<address>', 'APP/STREAM')
    .option('--group <cell>', 'the consuming cell whose cursor --reset moves')
    .option('--reset <where>', 'OFFSET, earliest or latest')
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (address: string, flags: StreamFlags) => {
      let app: string, stream: string
      try {
        ({ app, stream } = parseStreamAddress(address))
      } catch (err) {
        throw new CliError((err as Error).message, EXIT_USAGE)
      }
      if ((flags.group === undefined) !== (flags.reset === undefined)) throw new CliError('--group and --reset go together', EXIT_USAGE)
      const target = flags.reset === undefined ? undefined : parseResetTarget(flags.reset)
      const caller = createHttpCaller({ url: await apiUrl(flags), token: await readToken(dataDirOf(flags)) })
      const ask = async (cell: string, method: string, args: unknown[]): Promise<unknown> => await caller.ask(`${app}/${cell}`, method, args, { messageId: newMessageId() })
      let count: number
      try {
        count = await ask(partitionCell(stream, 0), 'partitions', []) as number
      } catch (err) {
        throw new CliError(`no stream ${stream} in app ${app}: ${(err as Error).message.split('\n')[0]}`)
      }
      const infos: PartitionInfo[] = []
      for (let p = 0; p < count; p++) {
        const cell = partitionCell(stream, p)
        if (target !== undefined && flags.group !== undefined) {
          const info = await ask(cell, 'info', []) as PartitionInfo
          const groups = Object.keys(info.groups).filter(g => g === flags.group || g.startsWith(`${flags.group}#`))
          // a group not seen yet on this partition starts there
          for (const g of groups.length > 0 ? groups : [flags.group]) await ask(cell, 'reset', [g, target])
        }
        infos.push(await ask(cell, 'info', []) as PartitionInfo)
      }
      if (flags.json === true) { printJson({ app, stream, partitions: infos }); return }
      const rows = [['PARTITION', 'BASE', 'NEXT', 'GROUP', 'ACKED', 'LAG']]
      for (const i of infos) {
        const groups = Object.entries(i.groups)
        if (groups.length === 0) rows.push([String(i.partition), String(i.base), String(i.next), '-', '-', '-'])
        for (const [name, g] of groups) rows.push([String(i.partition), String(i.base), String(i.next), name, String(g.acked), String(g.lag)])
      }
      process.stdout.write(table(rows))
    })
}
