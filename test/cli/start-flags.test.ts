// `stem start` / `stem join` flag parsing into node options (no node is started).
import assert from 'node:assert/strict'
import { Command, CommanderError } from 'commander'
import { addStartFlags, nodeOptionsOf, startArgsOf, type StartFlags } from '../../src/cli/commands/start.js'
import { checkMemory, CliError } from '../../src/cli/context.js'
import { stem, tempDataDir } from '../support/stem-process.js'

function parse (args: string[]): ReturnType<typeof nodeOptionsOf> {
  const command = addStartFlags(new Command('start'))
    .exitOverride()
    .configureOutput({ writeErr: () => {} })
  command.parse(args, { from: 'user' })
  return nodeOptionsOf(command.opts<StartFlags>(), undefined)
}

describe('cli: stem start flags', () => {
  it('--upnp turns the router port mapping on; it is off without the flag', () => {
    assert.equal(parse(['--data', '/tmp/x', '--upnp']).upnp, true)
    assert.equal(parse(['--data', '/tmp/x']).upnp, false)
  })

  it('--upnp takes no value', () => {
    assert.throws(() => parse(['--data', '/tmp/x', '--upnp=yes']), (err: unknown) => err instanceof CommanderError && /--upnp/.test(err.message))
  })

  it('passes the other flags through: listen and bootstrap repeat, sizes and counts are parsed, --cells 0 is allowed', () => {
    const o = parse(['--data', '/tmp/x', '--listen', '/ip4/0.0.0.0/tcp/1', '--listen', '/ip4/0.0.0.0/tcp/2', '--bootstrap', '/ip4/1.2.3.4/tcp/4017',
      '--api', '127.0.0.1:0', '--gateway', '0.0.0.0:8080', '--cpu', '1.5', '--memory', '512MiB', '--cells', '0', '--mesh', 'friends', '--name', 'node-1'])
    assert.deepEqual(o, {
      dataDir: '/tmp/x',
      listen: ['/ip4/0.0.0.0/tcp/1', '/ip4/0.0.0.0/tcp/2'],
      bootstrap: ['/ip4/1.2.3.4/tcp/4017'],
      invite: undefined,
      api: '127.0.0.1:0',
      gateway: '0.0.0.0:8080',
      cpu: 1.5,
      memory: 512 * 2 ** 20,
      cells: 0,
      mesh: 'friends',
      name: 'node-1',
      upnp: false
    })
  })

  it('--memory takes binary units only: a decimal one is refused naming the flag and the binary unit', () => {
    for (const [bad, binary] of [['2GB', '2GiB'], ['500MB', '500MiB']]) {
      assert.throws(() => parse(['--memory', bad]), (err: unknown) => err instanceof CliError && err.exitCode === 2 &&
        err.message === `--memory: "${bad}" is in decimal units: use binary units (MiB, GiB), e.g. ${binary}`, bad)
    }
  })

  it('refuses --memory above the machine\'s memory unless --force, which a service unit keeps', () => {
    const machine = 8 * 2 ** 30
    assert.throws(() => { checkMemory({ memory: 16 * 2 ** 30 }, machine) }, (err: unknown) => err instanceof CliError && err.exitCode === 2 &&
      err.message === '--memory 16GiB is more than this machine\'s memory (8.0GiB); pass --force to contribute it anyway')
    checkMemory({ memory: 16 * 2 ** 30, force: true }, machine)
    checkMemory({ memory: machine }, machine)
    checkMemory({}, machine)
    assert.deepEqual(startArgsOf({ memory: 2 ** 40, force: true }), ['--memory', '1TiB', '--force'])
  })

  it('stem start --memory 100TiB exits 2 with one line before starting anything', async function () {
    this.timeout(60_000)
    const dir = await tempDataDir()
    const r = await stem(['start', '--memory', '100TiB', '--data', dir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr, /^stem: --memory 100TiB is more than this machine's memory \(\d+\.\dGiB\); pass --force to contribute it anyway\n$/)
    assert.equal(r.stdout, '')
  })

  it('refuses a --name that is not 1 to 32 letters, digits, ., _ or -, naming the flag', () => {
    for (const bad of ['a b', '-x', 'x'.repeat(33), '']) {
      assert.throws(() => parse(['--name', bad]), (err: unknown) => err instanceof CliError && err.exitCode === 2 && /^--name: invalid node name /.test(err.message), bad)
    }
    assert.equal(parse(['--name', 'node-7']).name, 'node-7')
  })

  it('refuses a negative or fractional --cells with a message naming the flag', () => {
    for (const bad of ['-1', '1.5', 'many', '']) {
      assert.throws(() => parse(['--cells', bad]), (err: unknown) => err instanceof Error && /--cells/.test(err.message) && (err instanceof CliError || err instanceof CommanderError), bad)
    }
  })
})
