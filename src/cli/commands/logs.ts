// `stem logs APP[/CELL] [--follow] [--since 10m] [--json]`: the cell log lines of an app
// (stem.log, errors with their stacks, crashes, restarts, failures) from every node, merged
// in time order (GET /v1/logs on the local node, which asks the others). --follow asks
// again every second for lines since the newest shown.
import type { Command } from 'commander'
import type { CellLogLine } from '../../node/cell-logs.js'
import type { GatheredLogs } from '../../node/log-exchange.js'
import { parseDuration } from '../../util/units.js'
import { setTimeout as delay } from 'node:timers/promises'
import type { ApiClient } from '../../api/client.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import { nodeLabels } from '../node-labels.js'
import { CliError, EXIT_USAGE, apiClient, example, type ClientOptions } from '../context.js'

interface LogsOptions extends ClientOptions {
  follow?: boolean
  since?: string
}

const FOLLOW_MS = 1000
/** at most this long for one ask of the logs */
const ASK_MS = 30_000

/** `APP` or `APP/CELL` or `APP/CELL#i` → the query's app and cell */
export function parseLogTarget (target: string): { app: string, cell?: string } {
  const cut = target.indexOf('/')
  const app = cut < 0 ? target : target.slice(0, cut)
  const cell = cut < 0 ? undefined : target.slice(cut + 1)
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(app) || (cell !== undefined && !/^[a-z0-9][a-z0-9_-]{0,62}(#\d{1,6})?$/i.test(cell))) {
    throw new CliError(`invalid app or cell "${target}": expected APP, APP/CELL or APP/CELL#i`, EXIT_USAGE)
  }
  return { app, cell }
}

/** one line as printed: time, node (name and short id), address, revision (short), kind, text; an error's stack below it */
export function formatCliLogLine (l: CellLogLine, label: (id: string) => string = shortPeerId): string {
  const head = `${new Date(l.ts).toISOString()} ${label(l.node)} ${l.address} rev ${l.revision.slice(0, 8) || '-'} ${l.kind}${l.method !== undefined ? ` in ${l.method}` : ''}: ${l.text}`
  return l.stack !== undefined ? `${head}\n${l.stack.split('\n').map(s => `    ${s.trim()}`).join('\n')}` : head
}

export function registerLogs (program: Command): void {
  program.command('logs')
    .description('cell logs of an app from every node, in time order: stem.log lines, errors with stacks, crashes and restarts')
    .argument('<target>', 'APP, APP/CELL or APP/CELL#i')
    .option('-f, --follow', 'keep printing new lines')
    .option('--since <duration>', 'only lines of the last DURATION (e.g. 30s, 10m, 1h)')
    .option('--data <dir>', 'data directory of the running node')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'one JSON object per line')
    .addHelpText('after', example('stem logs todo/todos --follow --since 10m'))
    .action(async (target: string, flags: LogsOptions) => {
      const { app, cell } = parseLogTarget(target)
      let since = 0
      if (flags.since !== undefined) {
        try {
          since = Date.now() - parseDuration(flags.since)
        } catch (err) {
          throw new CliError(`--since: ${(err as Error).message}`, EXIT_USAGE)
        }
      }
      await printLogs(await apiClient(flags), { app, cell, since, json: flags.json, follow: flags.follow })
    })
}

export interface PrintLogsOptions {
  app: string
  cell?: string
  /** ms since the epoch: lines from then on */
  since: number
  json?: boolean
  /** keep asking every second for new lines (until `signal` aborts) */
  follow?: boolean
  signal?: AbortSignal
}

/** Prints the app's log lines, merged from every node, once or following (`stem logs`, `stem dev`). */
export async function printLogs (client: ApiClient, options: PrintLogsOptions): Promise<void> {
  const { app, cell } = options
  let since = options.since
  // lines shown at the newest timestamp: they come again on the next ask (since is inclusive)
  let shown = new Set<string>()
  const warned = new Set<string>()
  const label = options.json === true ? shortPeerId : await nodeLabels(client)
  while (options.signal?.aborted !== true) {
    const query = new URLSearchParams({ app, ...(cell !== undefined ? { cell } : {}), since: String(since) })
    // the client's own 30 s bound applies only without a signal: keep one with it
    const answer = await client.get<GatheredLogs>(`/v1/logs?${query.toString()}`, options.signal !== undefined ? AbortSignal.any([options.signal, AbortSignal.timeout(ASK_MS)]) : undefined)
    for (const missing of answer.missing) {
      if (!warned.has(missing)) process.stderr.write(`stem: no logs from node ${missing}\n`)
      warned.add(missing)
    }
    for (const line of answer.lines) {
      const key = `${line.node}:${line.seq}`
      if (line.ts < since || shown.has(key)) continue
      if (line.ts > since) { since = line.ts; shown = new Set() }
      shown.add(key)
      process.stdout.write((options.json === true ? JSON.stringify(line) : formatCliLogLine(line, label)) + '\n')
    }
    if (options.follow !== true) return
    await delay(FOLLOW_MS, undefined, { signal: options.signal }).catch(() => {})
  }
}
