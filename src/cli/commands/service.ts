// `stem service install [--user] [start flags…]` / `uninstall` / `status`: a systemd unit
// that runs `stem start` at boot with this data dir and flags, restarts it on failure and
// stops it with SIGTERM (the node's graceful leave). The hidden --unit-dir writes the
// unit into another directory and leaves systemctl alone (tests; CI never enables it).
import { mkdir, readFile, realpath, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { writeFileAtomic } from '../../util/atomic-file.js'
import { checkMemory, CliError, dataDirOf, example, EXIT_USAGE, printJson } from '../context.js'
import { STEM_BIN } from '../demo/cloud.js'
import { defaultUnitDir, execStartOf, systemdUnit, UNIT_NAME } from '../service/unit.js'
import { systemctl, systemctlOrFail } from '../service/systemctl.js'
import { addStartFlags, startArgsOf, type StartFlags } from './start.js'

interface UnitFlags { user?: boolean, unitDir?: string, json?: boolean }

function addUnitFlags (command: Command): Command {
  return command
    .option('--user', 'a user service (systemctl --user) instead of a system one')
    .addOption(new Option('--unit-dir <dir>', 'write the unit here and do not run systemctl (tests)').hideHelp())
}

function unitPathOf (flags: UnitFlags): string {
  return join(flags.unitDir ?? defaultUnitDir(flags.user === true), UNIT_NAME)
}

async function readUnit (path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`no stem service installed: ${path} does not exist`)
    throw err
  }
}

/** the data dir the unit will run with: it must exist (the node has run once: joined, or started a mesh) */
async function existingDataDir (dir: string): Promise<{ uid: number, gid: number }> {
  const first = `run \`stem join TOKEN --data ${dir}\` or \`stem start --data ${dir}\` once first, or give --data DIR`
  try {
    const s = await stat(dir)
    if (!s.isDirectory()) throw new CliError(`data dir ${dir} is not a directory (${first})`, EXIT_USAGE)
    return { uid: s.uid, gid: s.gid }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`data dir ${dir} does not exist (${first})`, EXIT_USAGE)
    throw err
  }
}

async function install (flags: StartFlags & UnitFlags): Promise<void> {
  checkMemory(flags)
  const user = flags.user === true
  const dataDir = dataDirOf(flags)
  const owner = await existingDataDir(dataDir)
  const text = systemdUnit({ node: process.execPath, bin: await realpath(STEM_BIN), dataDir, args: startArgsOf(flags), user, owner })
  const path = unitPathOf(flags)
  try {
    await mkdir(join(path, '..'), { recursive: true })
    await writeFileAtomic(path, text, { mode: 0o644 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') throw new CliError(`cannot write ${path}: permission denied (a system service needs root: sudo stem service install …; or --user)`)
    throw err
  }
  process.stdout.write(`wrote ${path}\n`)
  if (flags.unitDir != null) { process.stdout.write('systemctl not run (--unit-dir)\n'); return }
  const ctl = user ? 'systemctl --user' : 'systemctl'
  await systemctlOrFail(user, ['daemon-reload'])
  await systemctlOrFail(user, ['enable', UNIT_NAME])
  // restart, not start: a unit that already ran picks up the new flags
  await systemctlOrFail(user, ['restart', UNIT_NAME])
  process.stdout.write(`enabled and started ${UNIT_NAME}: it starts at boot; \`${ctl} status stem\`, logs: \`journalctl ${user ? '--user ' : ''}-u stem\`\n`)
  if (user) process.stdout.write('to keep it running while you are logged out: loginctl enable-linger $USER\n')
}

async function uninstall (flags: UnitFlags): Promise<void> {
  const user = flags.user === true
  const path = unitPathOf(flags)
  await readUnit(path)
  // stopped and disabled before the file goes: a failure here leaves everything as it was
  if (flags.unitDir == null) await systemctlOrFail(user, ['disable', '--now', UNIT_NAME])
  await rm(path)
  if (flags.unitDir == null) await systemctlOrFail(user, ['daemon-reload'])
  process.stdout.write(`removed ${path}\n`)
}

async function status (flags: UnitFlags): Promise<void> {
  const user = flags.user === true
  const path = unitPathOf(flags)
  const execStart = execStartOf(await readUnit(path)) ?? ''
  const ask = async (what: 'is-active' | 'is-enabled'): Promise<string> => {
    if (flags.unitDir != null) return 'not asked (--unit-dir)'
    const r = await systemctl(user, [what, UNIT_NAME]).catch((err: Error) => ({ stdout: '', stderr: err.message }))
    return r.stdout !== '' ? r.stdout : `unknown (${r.stderr.split('\n')[0]})`
  }
  const active = await ask('is-active')
  const enabled = await ask('is-enabled')
  if (flags.json === true) { printJson({ unit: path, execStart, active, enabled }); return }
  process.stdout.write(`unit: ${path}\nruns: ${execStart}\nactive: ${active}\nenabled: ${enabled}\n`)
}

export function registerService (program: Command): void {
  const service = program.command('service')
    .description('run this node as a systemd service: starts at boot, restarts on failure, leaves gracefully on stop')
    .addHelpText('after', example('sudo stem service install --data /home/me/.stem --cpu 2 --memory 2GiB --upnp'))

  addUnitFlags(addStartFlags(service.command('install')
    .description('write and enable a systemd unit that runs `stem start` with this data dir and these flags')
    .addHelpText('after', example('stem service install --user --cpu 2 --memory 2GiB')), 'service'))
    .action(install)

  addUnitFlags(service.command('uninstall')
    .description('stop, disable and remove the unit')
    .addHelpText('after', example('stem service uninstall --user')))
    .action(uninstall)

  addUnitFlags(service.command('status')
    .description('the unit\'s file, command line and state')
    .addHelpText('after', example('stem service status --user')))
    .option('--json', 'machine-readable output')
    .action(status)
}
