// `stem …`: parses argv, runs one command, reports any error as one line on stderr and
// a non-zero exit code (2 for unusable input such as a bad flag or invite token).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Command, CommanderError } from 'commander'
import { commands } from './commands/index.js'
import { CliError, EXIT_USAGE } from './context.js'
import { REPO_ROOT } from './demo/cloud.js'

function packageVersion (): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
}

/** every command and its flags, parsed by commander (tests walk it to check each command's help) */
export function createProgram (): Command {
  const program = new Command('stem')
    .description('a friend cloud for nanoservices')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeErr: text => { process.stderr.write(text) } })
    .showHelpAfterError(false)
    .addHelpText('after', '\nExample:\n  stem join stem1… --memory 1GiB   # join a friend\'s cloud; `stem COMMAND --help` for each command\n')
  for (const register of commands) register(program)
  const exitOverride = (command: Command): void => { command.exitOverride(); command.commands.forEach(exitOverride) }
  program.commands.forEach(exitOverride)
  return program
}

export async function main (argv: string[]): Promise<void> {
  // `stem peers | head`: a reader that stops early is not an error of stem's
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    process.exit(process.exitCode ?? 0)
  })
  const program = createProgram()
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and exit 0; commander already printed its one-line error
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE
      return
    }
    const message = (err as Error).message.split('\n')[0]
    process.stderr.write(`stem: ${message}\n`)
    process.exitCode = err instanceof CliError ? err.exitCode : 1
  }
}
