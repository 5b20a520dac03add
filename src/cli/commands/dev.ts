// `stem dev FILE.yaml`: publishes the app, then watches its sources (the manifest's
// directory and each cell entry's) and republishes on save — an update, so every cell
// keeps its state (the cell host swaps the code under it) — while streaming the app's
// logs from every node (`stem logs --follow`'s printLogs). A save that does not bundle,
// or a publish that fails, prints why (esbuild's file:line:column and source line) and
// keeps watching; the next good save publishes. Ctrl-C stops watching and exits 0.
import type { Command } from 'commander'
import { setTimeout as delay } from 'node:timers/promises'
import type { ApiClient } from '../../api/client.js'
import { loadManifest, resolveCellCode } from '../../topology/manifest.js'
import { apiClient, CliError, EXIT_USAGE, example } from '../context.js'
import { createProgress } from '../progress.js'
import { createDebouncedRunner, watchRoots, watchSources } from '../watch.js'
import { BundleError, publishApp, type PublishFlags } from './publish.js'
import { printLogs } from './logs.js'

/** a burst of saves within this quiet time is one republish */
const QUIET_MS = 150
/** a log stream that failed (the node restarting, say) is asked again after this */
const LOGS_RETRY_MS = 1000

interface DevFlags extends PublishFlags {
  logs?: boolean
}

export function registerDev (program: Command): void {
  program.command('dev')
    .description('publish an app, republish it on every save of its sources (state kept), and stream its logs; Ctrl-C stops')
    .argument('<file>', 'the app manifest (YAML)')
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--owner-key <file>', 'sign with the owner key in FILE instead of the data dir\'s owner.key')
    .option('--timeout <seconds>', 'how long each publish waits for the placement', '120')
    .option('--no-logs', 'do not stream the app\'s logs')
    .addHelpText('after', example('stem dev todo/app.yaml --data /tmp/stem-demo-x/node-2'))
    .action(async (file: string, flags: DevFlags) => {
      const seconds = Number(flags.timeout)
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(`--timeout: expected a number of seconds > 0, got "${flags.timeout}"`, EXIT_USAGE)
      let manifest
      try {
        manifest = await loadManifest(file)
      } catch (err) {
        throw new CliError((err as Error).message.split('\n')[0], EXIT_USAGE)
      }
      const client = await apiClient(flags)
      const stop = new AbortController()
      const roots = watchRoots([file, ...Object.values(manifest.cells).map(spec => resolveCellCode(file, spec))])
      const progress = createProgress({ plain: true })

      const publishOnce = async (): Promise<void> => {
        const started = performance.now()
        try {
          const outcome = await publishApp(file, flags, seconds, progress, stop.signal)
          progress.done(`${outcome.changed ? 'published' : 'unchanged'}: ${outcome.app} in ${Math.round(performance.now() - started)} ms; watching ${roots.join(', ')}`)
        } catch (err) {
          progress.clear()
          if (stop.signal.aborted) return
          // a BundleError's lines are esbuild's location, source line and caret: all of them
          const message = err instanceof BundleError ? err.message : (err as Error).message.split('\n')[0]
          process.stderr.write(`stem: ${message}\nstem dev: still watching; the next save publishes again\n`)
        }
      }

      const runner = createDebouncedRunner(publishOnce, QUIET_MS)
      const watcher = watchSources(roots, () => { runner.changed() })
      const stopped = new Promise<void>(resolve => { stop.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
      const onSignal = (): void => {
        if (stop.signal.aborted) process.exit(130) // a second Ctrl-C: now
        process.stderr.write('\nstem dev: stopping\n')
        runner.stop()
        watcher.close()
        stop.abort()
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)

      const since = Date.now()
      await publishOnce()
      if (flags.logs !== false) void streamLogs(client, manifest.app, since, stop.signal)
      await stopped
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    })
}

/** `stem logs APP --follow` until `signal`; after a failure (the node restarting, say), asked again from then on */
async function streamLogs (client: ApiClient, app: string, since: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      await printLogs(client, { app, since, follow: true, signal })
    } catch (err) {
      if (signal.aborted) return
      process.stderr.write(`stem dev: logs: ${(err as Error).message.split('\n')[0]}\n`)
      await delay(LOGS_RETRY_MS, undefined, { signal }).catch(() => {})
      since = Date.now()
    }
  }
}
