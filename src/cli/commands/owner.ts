// `stem owner export [FILE]` and `stem owner import FILE`: carry the owner key (who owns
// the apps published from this data dir) to another machine. The key code (libp2p crypto)
// is imported on use, so it does not slow the start-up of every other command.
import type { Command } from 'commander'
import { access, readFile } from 'node:fs/promises'
import { writeFileAtomic } from '../../util/atomic-file.js'
import { dataFiles, prepareDataDir } from '../../node/data-dir.js'
import { CliError, dataDirOf, example } from '../context.js'

interface OwnerFlags { data?: string, force?: boolean }

const SECRET = 'this file is a secret: whoever holds it owns your apps (publish, scale, revert); keep it private'

async function exists (path: string): Promise<boolean> {
  try { await access(path); return true } catch { return false }
}

export function registerOwner (program: Command): void {
  const owner = program.command('owner')
    .description('the owner key: who owns the apps published from this data dir')
    .addHelpText('after', example('stem owner export ~/stem-owner.key'))

  owner.command('export')
    .description('write the owner key to FILE (mode 0600), or to stdout; creates the key if there is none yet')
    .addHelpText('after', example('stem owner export ~/stem-owner.key'))
    .argument('[file]', 'where to write the key (stdout if omitted)')
    .option('--data <dir>', 'data directory holding owner.key')
    .option('--force', 'replace FILE if it exists')
    .action(async (file: string | undefined, flags: OwnerFlags) => {
      const [{ peerIdOf }, { encodeOwnerKeyFile, ownerKey }] = await Promise.all([import('../../wire/keys.js'), import('../owner.js')])
      await prepareDataDir(dataDirOf(flags))
      const key = await ownerKey(flags)
      process.stderr.write(`stem: ${SECRET}\n`)
      if (file === undefined) { process.stdout.write(encodeOwnerKeyFile(key)); return }
      if (flags.force !== true && await exists(file)) throw new CliError(`${file} exists; pass --force to replace it`)
      await writeFileAtomic(file, encodeOwnerKeyFile(key), { mode: 0o600 })
      process.stdout.write(`exported owner ${peerIdOf(key.publicKey)} to ${file}\n`)
    })

  owner.command('import')
    .description('make the owner key in FILE (from `stem owner export`) this data dir\'s owner key')
    .addHelpText('after', example('stem owner import ~/stem-owner.key'))
    .argument('<file>', 'an owner key file')
    .option('--data <dir>', 'data directory to hold owner.key')
    .option('--force', 'replace a different existing owner key (its apps can no longer be changed from here)')
    .action(async (file: string, flags: OwnerFlags) => {
      const [{ encodePrivateKey, peerIdOf }, { readOwnerKeyFile }] = await Promise.all([import('../../wire/keys.js'), import('../owner.js')])
      const key = await readOwnerKeyFile(file)
      const id = peerIdOf(key.publicKey)
      const dir = dataDirOf(flags)
      await prepareDataDir(dir)
      const path = dataFiles(dir).owner
      const current = await currentOwner(path)
      if (current === id) { process.stdout.write(`owner ${id} already in ${path}\n`); return }
      if (current !== undefined && flags.force !== true) throw new CliError(`${path} holds another owner (${current}); pass --force to replace it`)
      await writeFileAtomic(path, encodePrivateKey(key), { mode: 0o600 })
      process.stdout.write(`imported owner ${id} into ${path}\n`)
    })
}

/** the owner id of the key at `path`, undefined if there is none; a corrupt file counts as another owner */
async function currentOwner (path: string): Promise<string | undefined> {
  const { decodePrivateKey, peerIdOf } = await import('../../wire/keys.js')
  let bytes: Uint8Array
  try { bytes = await readFile(path) } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CliError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try { return peerIdOf(decodePrivateKey(bytes).publicKey) } catch { return 'a corrupt key' }
}
