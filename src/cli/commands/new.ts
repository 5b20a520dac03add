// `stem new NAME [--ts]`: scaffolds an app in ./NAME (scaffold.ts has the files). Written
// into a temp dir beside it and renamed into place, so a failure leaves nothing half made.
// node_modules/stem links to this Stem install so `stem/sdk` and `stem/cell` resolve
// without `npm install` (whose file: dependency would rebuild Stem).
import type { Command } from 'commander'
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { nameProblem } from '../../topology/manifest.js'
import { CliError, EXIT_USAGE, example } from '../context.js'
import { REPO_ROOT } from '../demo/cloud.js'
import { scaffoldFiles } from '../scaffold.js'

export function registerNew (program: Command): void {
  program.command('new')
    .description('scaffold an app in ./NAME: a manifest, one cell with routes, and a test that asks it through the SDK')
    .argument('<name>', 'the app\'s name (lowercase letters, digits and \'-\', starting with a letter)')
    .option('--ts', 'the cell in TypeScript, typed with stem/cell (and a tsconfig.json)')
    .addHelpText('after', example('stem new todo --ts && stem dev todo/app.yaml'))
    .action(async (name: string, flags: { ts?: boolean }) => {
      const problem = nameProblem(name)
      if (problem !== undefined) throw new CliError(`invalid app name: ${problem}`, EXIT_USAGE)
      const dir = resolve(name)
      if (await stat(dir).then(() => true, () => false)) throw new CliError(`${dir} already exists; choose another name or remove it`)
      // (mkdir, not mkdtemp: the app dir gets the umask's mode, not 0700)
      const temp = join(dirname(dir), `.${name}-${randomBytes(4).toString('hex')}`)
      await mkdir(temp)
      try {
        for (const [path, text] of scaffoldFiles({ name, ts: flags.ts })) {
          await mkdir(dirname(join(temp, path)), { recursive: true })
          await writeFile(join(temp, path), text)
        }
        await mkdir(join(temp, 'node_modules'))
        await symlink(REPO_ROOT.replace(/\/+$/, ''), join(temp, 'node_modules', 'stem'), 'dir')
        await rename(temp, dir)
      } catch (err) {
        await rm(temp, { recursive: true, force: true })
        throw err
      }
      process.stdout.write(`created ${dir}\n\n  stem dev ${join(name, 'app.yaml')}    # publish, republish on save, stream the logs\n  cd ${name} && npm test${flags.ts === true ? ' && npm run typecheck' : ''}\n`)
    })
}
