// `stem publish FILE.yaml`: validate, bundle (esbuild), sign with the owner key, publish
// through the local node, then follow the rollout until every instance runs the published
// revision — or fail with the cause if a cell's new code failed and was rolled back.
import type { Command } from 'commander'
import { buildBundle, encodeBundle } from '../../cells/index.js'
import { loadManifest, resolveCellCode } from '../../topology/manifest.js'
import type { AppCellsListing } from '../../topology/app-table.js'
import { cellRevision } from '../../topology/cell-revision.js'
import type { PublishResult } from '../../topology/service.js'
import { apiClient, printJson, CliError, EXIT_USAGE, type ClientOptions } from '../context.js'
import { ownerKey, signedByOwner } from '../owner.js'

interface PublishFlags extends ClientOptions { timeout?: string }

const POLL_MS = 250

export function registerPublish (program: Command): void {
  program.command('publish')
    .description('bundle, sign and publish an app manifest; waits until every cell is placed')
    .argument('<file>', 'the app manifest (YAML)')
    .option('--data <dir>', 'data directory of the running node (and of the owner key)')
    .option('--api <host:port>', 'control API of the running node')
    .option('--timeout <seconds>', 'how long to wait for the placement', '120')
    .option('--json', 'machine-readable output')
    .action(async (file: string, flags: PublishFlags) => {
      const seconds = Number(flags.timeout)
      if (!Number.isFinite(seconds) || seconds <= 0) throw new CliError(`--timeout: expected a number of seconds > 0, got "${flags.timeout}"`, EXIT_USAGE)
      const progress = (line: string): void => { if (flags.json !== true && process.stdout.isTTY) process.stdout.write(line + '\n') }
      let manifest
      try {
        manifest = await loadManifest(file)
      } catch (err) {
        throw new CliError((err as Error).message.split('\n')[0], EXIT_USAGE)
      }
      const key = await ownerKey(flags)
      const bundles: string[] = []
      for (const [cell, spec] of Object.entries(manifest.cells)) {
        progress(`bundling ${manifest.app}/${cell} from ${spec.code}`)
        const bundle = await buildBundle({ entry: resolveCellCode(file, spec), app: manifest.app, cell, limits: { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox }, owner: key })
        spec.bundle = bundle.hash
        bundles.push(Buffer.from(encodeBundle(bundle)).toString('base64'))
      }
      const client = await apiClient(flags)
      const at = Date.now()
      const signed = await signedByOwner(flags, { op: 'publish', app: manifest.app, at, manifest })
      const wanted = new Map(Object.entries(manifest.cells).map(([cell, spec]) => [cell, cellRevision(spec)]))
      progress(`publishing ${manifest.app}`)
      const deadline = Date.now() + seconds * 1000
      const result = await client.post<PublishResult>('/v1/publish', { signed, bundles }, AbortSignal.timeout(seconds * 1000))
      let last = ''
      let listing: AppCellsListing | undefined
      while (true) {
        listing = (await client.get<AppCellsListing[]>('/v1/cells').catch(() => []))
          .find(a => a.app === manifest.app)
        const cells = listing?.cells ?? []
        const expected = Object.values(manifest.cells).reduce((n, c) => n + c.replicas, 0)
        // an instance still on the previous revision is not ready yet, even if transformed
        const ready = cells.filter(c => c.state === 'transformed' && c.revision === wanted.get(c.address.slice(c.address.indexOf('/') + 1, c.address.lastIndexOf('#')))).length
        const failed = cells.filter(c => c.state === 'failed')
        const rolledBack = (listing?.rollbacks ?? []).find(r => r.at === at && r.revision === wanted.get(r.cell))
        if (rolledBack !== undefined) throw new CliError(`${manifest.app}/${rolledBack.cell}: the new code failed and was rolled back, the previous revision keeps serving: ${rolledBack.error}`)
        const line = `placing ${manifest.app}: ${ready}/${expected} instances ready`
        if (line !== last) { progress(line); last = line }
        if (failed.length > 0) throw new CliError(`${failed.map(c => c.address).join(', ')} failed to start on ${failed.map(c => c.node).join(', ')} (see that node's log)`)
        if (cells.length >= expected && ready === cells.length) break
        if (Date.now() > deadline) throw new CliError(`${manifest.app} was published but not every instance was ready after ${seconds} s (${ready}/${expected}); see \`stem cells ${manifest.app}\``)
        await new Promise(resolve => setTimeout(resolve, POLL_MS))
      }
      if (flags.json === true) { printJson({ app: result.app, changed: result.changed, cells: listing?.cells ?? [] }); return }
      process.stdout.write(`${result.changed ? 'published' : 'unchanged'}: ${result.app}\n`)
      for (const c of listing?.cells ?? []) process.stdout.write(`  ${c.address} on ${c.node} (${c.state})\n`)
    })
}
