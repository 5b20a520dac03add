// `stem scale APP/CELL N`, `stem restart APP[/CELL]` and `stem revert APP[/CELL]`: owner-signed changes of a running app.
// Scale then follows the placement, as publish does, until N instances run.
import type { Command } from 'commander'
import { apiClient, printJson, CliError, EXIT_USAGE, example, type ClientOptions } from '../context.js'
import { followPlacement, scaleGoal } from '../placement.js'
import { createProgress } from '../progress.js'

function usage<T> (f: () => T): T {
  try {
    return f()
  } catch (err) {
    throw new CliError((err as Error).message, EXIT_USAGE)
  }
}

export function registerScale (program: Command): void {
  program.command('scale')
    .description('change the number of replicas of a cell')
    .addHelpText('after', example('stem scale counter/counter 3'))
    .argument('<address>', 'APP/CELL')
    .argument('<replicas>', 'instances that serve messages (1 or more)')
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--timeout <seconds>', 'how long to wait until the replicas run', '120')
    .option('--json', 'machine-readable output')
    .action(async (address: string, replicas: string, flags: ClientOptions & { timeout: string }) => {
      // the owner key code (libp2p crypto) loads only for the commands that sign
      const { signedByOwner, splitAppCell } = await import('../owner.js')
      const { app, cell } = usage(() => splitAppCell(address, true))
      const n = Number(replicas)
      if (!Number.isSafeInteger(n) || n < 1) throw new CliError(`invalid replicas "${replicas}": expected a whole number ≥ 1`, EXIT_USAGE)
      const seconds = Number(flags.timeout)
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(`--timeout: expected a number of seconds > 0, got "${flags.timeout}"`, EXIT_USAGE)
      const client = await apiClient(flags)
      const at = Date.now()
      const signed = await signedByOwner(flags, { op: 'scale', app, at, cell: cell as string, replicas: n })
      const started = Date.now()
      const result = await client.post<{ changed: boolean }>('/v1/owner', { signed }, AbortSignal.timeout(seconds * 1000))
      const progress = createProgress({ json: flags.json })
      await followPlacement(client, scaleGoal(app, cell as string, n, at), progress, { timeout: Math.max(1, seconds * 1000 - (Date.now() - started)), action: 'scaled' })
      if (flags.json === true) { printJson({ app, cell, replicas: n, changed: result.changed }); return }
      progress.done(`${app}/${cell as string}: ${n} replicas running${result.changed ? '' : ' (unchanged)'}`)
    })

  program.command('restart')
    .description('restart the failed instances of an app (or of one cell) from their last good state')
    .argument('<address>', 'APP or APP/CELL')
    .addHelpText('after', example('stem restart counter'))
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--accept-loss', 'also start its lost instances from the newest copy found (or blank), giving up what the nodes still away hold')
    .option('--json', 'machine-readable output')
    .action(async (address: string, flags: ClientOptions & { acceptLoss?: boolean }) => {
      const acceptLoss = flags.acceptLoss === true
      const changed = await ownerRequest('restart', address, flags, acceptLoss)
      if (changed === undefined) return
      const done = acceptLoss ? `restarted the failed instances of ${address} and started the lost ones from the newest copy found` : `restarted the failed instances of ${address} from their last good state`
      process.stdout.write(changed ? `${done}\n` : `no ${acceptLoss ? 'failed or lost' : 'failed'} instance of ${address}\n`)
    })

  program.command('revert')
    .description('revert a cell (or the whole app, dissolving its group) to blank stem cells')
    .addHelpText('after', example('stem revert counter/counter'))
    .argument('<address>', 'APP or APP/CELL')
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--json', 'machine-readable output')
    .action(async (address: string, flags: ClientOptions) => {
      const changed = await ownerRequest('revert', address, flags)
      if (changed !== undefined) process.stdout.write(`reverted ${address}${changed ? '' : ' (already reverted)'}\n`)
    })
}

/** An owner-signed restart or revert of APP[/CELL]: whether it changed anything, or undefined once printed as JSON. */
async function ownerRequest (op: 'restart' | 'revert', address: string, flags: ClientOptions, acceptLoss = false): Promise<boolean | undefined> {
  const { signedByOwner, splitAppCell } = await import('../owner.js')
  const { app, cell } = usage(() => splitAppCell(address, false))
  const client = await apiClient(flags)
  const signed = await signedByOwner(flags, op === 'restart' && acceptLoss ? { op, app, at: Date.now(), cell, acceptLoss } : { op, app, at: Date.now(), cell })
  const result = await client.post<{ changed: boolean }>('/v1/owner', { signed })
  if (flags.json === true) { printJson({ app, cell: cell ?? null, changed: result.changed }); return undefined }
  return result.changed
}
