// `stem …`: parses argv, runs one command, reports any error as one line on stderr and
// a non-zero exit code (2 for unusable input such as a bad flag or invite token).
import { Command, CommanderError } from 'commander'
import { commands } from './commands/index.js'
import { CliError, EXIT_USAGE } from './context.js'

export async function main (argv: string[]): Promise<void> {
  const program = new Command('stem')
    .description('a friend cloud for nanoservices')
    .exitOverride()
    .configureOutput({ writeErr: text => { process.stderr.write(text) } })
    .showHelpAfterError(false)
  for (const register of commands) register(program)
  program.commands.forEach(c => c.exitOverride())
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
