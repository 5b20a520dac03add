// `stem start` / `stem join` flag parsing into node options (no node is started).
import assert from 'node:assert/strict'
import { Command, CommanderError } from 'commander'
import { addStartFlags, nodeOptionsOf, type StartFlags } from '../../src/cli/commands/start.js'
import { CliError } from '../../src/cli/context.js'

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
      '--api', '127.0.0.1:0', '--gateway', '0.0.0.0:8080', '--cpu', '1.5', '--memory', '512MiB', '--cells', '0', '--mesh', 'friends'])
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
      upnp: false
    })
  })

  it('refuses a negative or fractional --cells with a message naming the flag', () => {
    for (const bad of ['-1', '1.5', 'many', '']) {
      assert.throws(() => parse(['--cells', bad]), (err: unknown) => err instanceof Error && /--cells/.test(err.message) && (err instanceof CliError || err instanceof CommanderError), bad)
    }
  })
})
