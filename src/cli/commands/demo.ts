// `stem demo [--nodes N] [--smoke] [--data DIR]`: a local friend cloud of N real node
// processes with the counter example published, and a banner of what to try (SPEC §6;
// `npm start`). --smoke runs the tour unattended and exits 0 on success. Ctrl-C or
// SIGTERM stops every process the demo started.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import type { AppCellsListing } from '../../topology/app-table.js'
import { CliError, EXIT_USAGE, printJson, example } from '../context.js'
import { createProgress } from '../progress.js'
import { stopDemoNodes, type DemoNode } from '../demo/cloud.js'
import { DEMO_APP, nodeOf, startCloud } from '../demo/start-cloud.js'
import { demoGuide, formatBanner } from '../demo/banner.js'
import { smokeTour } from '../demo/smoke.js'

interface DemoFlags { nodes: string, smoke?: boolean, data?: string, json?: boolean }

const MAX_NODES = 9

/** Prints where the counter runs whenever that changes (a node killed from another terminal). */
function watchPlacement (nodes: DemoNode[], firstNode: string, signal: AbortSignal, write: (line: string) => void): void {
  let last = firstNode
  const seenDead = new Set<DemoNode>()
  const tick = async (): Promise<void> => {
    for (const n of nodes) {
      if (!n.running() && !seenDead.has(n)) {
        seenDead.add(n)
        write(`node ${n.index} (pid ${n.pid}) is gone; the others drop it after a few missed heartbeats`)
      }
    }
    const live = nodes.find(n => n.running())
    if (live === undefined) return
    const cells = (await (await live.client()).get<AppCellsListing[]>(`/v1/cells?app=${DEMO_APP}`, signal).catch(() => []))[0]?.cells ?? []
    const now = cells[0]
    if (now === undefined || now.state !== 'transformed' || now.node === last) return
    last = now.node
    write(`${now.address} now runs on node ${nodeOf(nodes, now.node)?.index ?? now.node}${now.clones.length > 0 ? `, clone on node ${now.clones.map(c => nodeOf(nodes, c)?.index ?? c).join(', ')}` : ''}`)
  }
  const timer = setInterval(() => { void tick().catch(() => {}) }, 1000)
  signal.addEventListener('abort', () => { clearInterval(timer) })
}

export function registerDemo (program: Command): void {
  program.command('demo')
    .description('a local friend cloud of N nodes with the counter example; prints what to try')
    .addHelpText('after', example('stem demo --nodes 5'))
    .option('--nodes <n>', 'how many nodes', '3')
    .option('--smoke', 'run the tour unattended (publish, calls, kill -9 failover) and exit 0 on success')
    .option('--data <dir>', 'keep the nodes\' data dirs under DIR (default: a temp dir, removed on exit)')
    .option('--json', 'print the demo\'s URLs, commands and pids as JSON; no progress lines')
    .action(async (flags: DemoFlags) => {
      const count = Number(flags.nodes)
      if (!Number.isSafeInteger(count) || count < 1 || count > MAX_NODES) throw new CliError(`--nodes: expected a whole number from 1 to ${MAX_NODES}, got "${flags.nodes}"`, EXIT_USAGE)
      const baseDir = flags.data != null ? resolve(flags.data) : await mkdtemp(join(tmpdir(), 'stem-demo-'))
      const progress = createProgress({ json: flags.json })
      const nodes: DemoNode[] = []
      const stopping = new AbortController()
      let stopped: Promise<void> | undefined
      const stopAll = async (): Promise<void> => {
        stopped ??= (async () => {
          stopping.abort()
          progress.clear()
          await stopDemoNodes(nodes)
          if (flags.data == null) await rm(baseDir, { recursive: true, force: true })
        })()
        await stopped
      }
      const interrupted = new Promise<NodeJS.Signals>(resolve => {
        const onSignal = (signal: NodeJS.Signals): void => {
          if (stopping.signal.aborted) {
            // a second Ctrl-C: no more grace
            for (const n of nodes) { try { process.kill(-n.pid, 'SIGKILL') } catch {} }
            return
          }
          resolve(signal)
        }
        // SIGHUP too: the nodes run in their own process groups, so a closed terminal reaches only the demo
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal)
      })
      const say = (line: string): void => { if (flags.json !== true) process.stdout.write(line + '\n') }

      const started = Date.now()
      try {
        const cloud = await Promise.race([
          startCloud(baseDir, count, nodes, progress, stopping.signal),
          interrupted.then(signal => { throw new CliError(`${signal}: stopped during start-up`, 130) })
        ])
        if (flags.smoke === true) {
          await Promise.race([
            smokeTour(cloud, progress, stopping.signal),
            interrupted.then(signal => { throw new CliError(`${signal}: smoke tour interrupted`, 130) })
          ])
          progress.step('stopping every node')
          await stopAll()
          if (flags.json === true) printJson({ ok: true, nodes: count, seconds: Math.round((Date.now() - started) / 1000) })
          else process.stdout.write(`smoke: ok (${count} nodes, ${Math.round((Date.now() - started) / 1000)} s)\n`)
          return
        }
        const guide = demoGuide(cloud.nodes, cloud.cells)
        if (flags.json === true) printJson({ dataDir: baseDir, ...guide })
        else process.stdout.write(formatBanner(guide, cloud.cells))
        watchPlacement(cloud.nodes, cloud.cells[0]?.node ?? '', stopping.signal, say)
        const signal = await interrupted
        say(`${signal}: stopping ${nodes.length} nodes…`)
        await stopAll()
        say('stopped.')
      } catch (err) {
        progress.clear()
        await stopAll()
        if (err instanceof CliError) throw err
        throw new CliError(`demo${flags.smoke === true ? ' --smoke' : ''} failed: ${(err as Error).message.split('\n')[0]}`)
      }
    })
}
