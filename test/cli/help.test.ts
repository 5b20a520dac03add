// `stem --version` and every command's --help, through the real bin/stem.js: each help
// lists only the options of its own command and ends with one example.
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { createProgram } from '../../src/cli/main.js'
import { repoRoot, runToEnd, stem, type CliResult } from '../support/stem-process.js'

/** every command path below the program: ['start'], ['service', 'install'], … */
function commandPaths (command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap(c => [[...prefix, c.name()], ...commandPaths(c, [...prefix, c.name()])])
}

/** the long flags a help text lists in its Options section */
function listedFlags (help: string): string[] {
  const options = help.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? ''
  return [...options.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map(m => m[1])
}

/** `stem … --help` of every command path, two processes at a time (one per core) */
async function helpsOf (paths: string[][]): Promise<Map<string, CliResult>> {
  const helps = new Map<string, CliResult>()
  const queue = [...paths]
  await Promise.all(Array.from({ length: 2 }, async () => {
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) helps.set(path.join(' '), await stem([...path, '--help']))
  }))
  return helps
}

describe('cli: --version and --help', function () {
  this.timeout(240_000)
  const program = createProgram()
  const paths = [[], ...commandPaths(program)]
  let helps: Map<string, CliResult>
  const help = (...path: string[]): string => (helps.get(path.join(' ')) as CliResult).stdout

  before(async () => { helps = await helpsOf(paths) })

  it('stem --help into a pipe whose reader is gone exits 0 without a stack trace (`stem --help | head`)', async () => {
    // the reader (`true`) has exited long before the node starts writing: every write meets EPIPE
    const script = 'set -o pipefail; "$0" --no-node-snapshot "$1" --help | true'
    const r = await runToEnd('bash', ['-c', script, process.execPath, join(repoRoot, 'bin', 'stem.js')])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
  })

  it('stem --version prints the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }
    for (const flag of ['--version', '-V']) {
      const r = await stem([flag])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, `${version}\n`)
    }
  })

  it('every command\'s --help lists exactly its own options and ends with one example', () => {
    assert.ok(paths.length >= 15, `only ${paths.length} commands found`)
    for (const path of paths) {
      const r = helps.get(path.join(' ')) as CliResult
      const name = ['stem', ...path].join(' ')
      assert.equal(r.code, 0, `${name} --help: ${r.stderr}`)
      const examples = r.stdout.split('\n').filter(l => l === 'Example:')
      assert.equal(examples.length, 1, `${name} --help has ${examples.length} Example: lines:\n${r.stdout}`)
      const example = r.stdout.split('Example:\n')[1].split('\n')[0]
      assert.match(example, new RegExp(`^ {2}(sudo )?${['stem', ...path.filter(p => p !== 'help')].join(' ')}\\b`), `${name}: its example runs another command: ${example}`)
      // what the help lists is what the command takes (hidden test/internal flags aside)
      const command = path.reduce<Command>((c, n) => c.commands.find(s => s.name() === n) as Command, program)
      const own = command.options.filter(o => !o.hidden && o.long != null).map(o => o.long as string)
      assert.deepEqual(listedFlags(r.stdout).filter(f => f !== '--help').sort(), own.sort(), `${name} --help lists other options`)
    }
  })

  it('stem join --help has no --invite (the token is its argument) and no --mesh (it joins an existing mesh)', () => {
    const flags = listedFlags(help('join'))
    for (const absent of ['--invite', '--mesh', '--exit-with-stdin']) assert.ok(!flags.includes(absent), `join --help lists ${absent}`)
    for (const present of ['--data', '--listen', '--cpu', '--memory', '--cells', '--upnp']) assert.ok(flags.includes(present), `join --help lacks ${present}`)
    assert.ok(listedFlags(help('start')).includes('--invite'))
    // the client commands take no node flags
    assert.deepEqual(listedFlags(help('peers')).sort(), ['--api', '--data', '--help', '--json'])
    // and the program's own help no option of any command
    assert.deepEqual(listedFlags(help()).sort(), ['--help', '--version'])
  })

  it('stem join refuses --invite and --mesh with one line', async () => {
    for (const flag of ['--invite', '--mesh']) {
      const r = await stem(['join', 'stem1x', flag, 'x'])
      assert.equal(r.code, 2)
      assert.equal(r.stderr, `error: unknown option '${flag}'\n`)
    }
  })
})
