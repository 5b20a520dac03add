// `stem publish FILE.yaml`: validate, bundle (esbuild), sign with the owner key, publish
// through the local node, then follow the rollout until every instance runs the published
// revision — or fail with the cause if a cell's new code failed and was rolled back.
import { DEFAULT_IDLE_MS } from '../../cells/keys.js'
import type { Command } from 'commander'
import type { CellClass } from '../../topology/route-methods.js'
import type { PublishResult } from '../../topology/service.js'
import { apiClient, printJson, CliError, EXIT_USAGE, example, type ClientOptions } from '../context.js'
import { createProgress, type Progress } from '../progress.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import { followPlacement, placementGoal, specListing } from '../placement.js'
import type { CellListing } from '../../topology/app-table.js'

export interface PublishFlags extends ClientOptions { timeout?: string, ownerKey?: string }

export function registerPublish (program: Command): void {
  program.command('publish')
    .description('bundle, sign and publish an app manifest; waits until every instance runs and every clone holds its copy')
    .addHelpText('after', example('stem publish examples/counter/app.yaml'))
    .argument('<file>', 'the app manifest (YAML)')
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--owner-key <file>', 'sign with the owner key in FILE (from `stem owner export`) instead of the data dir\'s owner.key')
    .option('--timeout <seconds>', 'how long to wait for the placement', '120')
    .option('--json', 'machine-readable output')
    .action(async (file: string, flags: PublishFlags) => {
      const seconds = Number(flags.timeout)
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(`--timeout: expected a number of seconds > 0, got "${flags.timeout}"`, EXIT_USAGE)
      // a spinner on a terminal, plain lines in a pipe, nothing with --json
      const progress = createProgress({ json: flags.json })
      let outcome: PublishOutcome
      try {
        outcome = await publishApp(file, flags, seconds, progress)
      } catch (err) {
        progress.clear()
        if (!(err instanceof BundleError)) throw err
        // several lines: file:line:column, the source line and a caret below it
        process.stderr.write(`stem: ${err.message}\n`)
        process.exitCode = 1
        return
      }
      if (flags.json === true) { printJson({ app: outcome.app, changed: outcome.changed, cells: outcome.cells.map(specListing) }); return }
      progress.done(`${outcome.changed ? 'published' : 'unchanged'}: ${outcome.app}`)
      for (const c of outcome.cells) process.stdout.write(`  ${c.address} on ${shortPeerId(c.node)} (${c.state})${c.clones.length > 0 ? `, clones on ${c.clones.map(shortPeerId).join(', ')}` : ''}\n`)
    })
}

/** A cell that did not bundle: the message is esbuild's, file:line:column, the source line and a caret. */
export class BundleError extends Error {
  override name = 'BundleError'
}

export interface PublishOutcome { app: string, changed: boolean, cells: CellListing[] }

/**
 * Bundles, checks, signs and publishes the manifest in `file`, then waits until every
 * instance runs the published revision (`stem publish`, and `stem dev` on each save).
 * A cell that does not bundle throws a BundleError, bad input a CliError.
 */
export async function publishApp (file: string, flags: PublishFlags, seconds: number, progress: Progress, signal?: AbortSignal): Promise<PublishOutcome> {
  // loaded on use: esbuild and the key code would slow every other command's start-up
  const [{ buildBundle, encodeBundle }, { classMethods }, { routeMethodProblems }, { loadManifest, resolveCellCode }, { ownerKey, signedByOwner }, { expandStreams }, { partitionBundle }] = await Promise.all([
    import('../../cells/index.js'), import('../../cells/class-methods.js'), import('../../topology/route-methods.js'), import('../../topology/manifest.js'), import('../owner.js'),
    import('../../topology/streams/stream-manifest.js'), import('../stream-bundles.js')])
  let manifest
  try {
    manifest = await loadManifest(file)
  } catch (err) {
    throw new CliError((err as Error).message.split('\n')[0], EXIT_USAGE)
  }
  const key = await ownerKey(flags)
  const bundles: string[] = []
  const classes: Record<string, CellClass> = {}
  // each stream partition is a cell of the app running Stem's partition code
  const partitions = new Map(expandStreams(manifest).map(p => [p.cell, p]))
  for (const [cell, spec] of Object.entries(manifest.cells)) {
    progress.step(`bundling ${manifest.app}/${cell} from ${spec.code}`)
    let bundle
    try {
      const partition = partitions.get(cell)
      bundle = partition !== undefined
        ? await partitionBundle(manifest.app, partition, spec, key)
        : await buildBundle({ entry: resolveCellCode(file, spec), app: manifest.app, cell, limits: { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }, owner: key, ...(spec.keyed === true ? { keyed: { idle: spec.idle ?? DEFAULT_IDLE_MS } } : {}) })
    } catch (err) {
      throw new BundleError(`cannot bundle ${manifest.app}/${cell}: ${(err as Error).message}`)
    }
    spec.bundle = bundle.hash
    bundles.push(Buffer.from(encodeBundle(bundle)).toString('base64'))
    if (!partitions.has(cell) && manifest.routes.some(r => r.cell === cell)) {
      try {
        classes[cell] = { ...await classMethods(bundle.code, spec), code: spec.code }
      } catch (err) {
        throw new CliError(`${manifest.app}/${cell} (${spec.code}): ${(err as Error).message}`)
      }
    }
  }
  const problems = routeMethodProblems(manifest, classes)
  if (problems.length > 0) throw new CliError(`${file}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more route${problems.length > 2 ? 's' : ''})` : ''}`, EXIT_USAGE)
  const client = await apiClient(flags)
  const at = Date.now()
  const signed = await signedByOwner(flags, { op: 'publish', app: manifest.app, at, manifest })
  progress.step(`publishing ${manifest.app}`)
  const started = Date.now()
  const timeout = AbortSignal.timeout(seconds * 1000)
  const result = await client.post<PublishResult>('/v1/publish', { signed, bundles }, signal !== undefined ? AbortSignal.any([signal, timeout]) : timeout)
  const cells = await followPlacement(client, placementGoal(manifest, at), progress, { timeout: Math.max(1, seconds * 1000 - (Date.now() - started)), signal })
  return { app: result.app, changed: result.changed, cells }
}
