// The text of the systemd unit `stem service install` writes (pure), and the `stem start`
// arguments it carries.
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { defaultUnitDir, execStartOf, execWord, systemdUnit, type UnitSpec } from '../../src/cli/service/unit.js'
import { addStartFlags, startArgsOf, type StartFlags } from '../../src/cli/commands/start.js'

const spec: UnitSpec = { node: '/opt/node/bin/node', bin: '/srv/stem/bin/stem.js', dataDir: '/home/ann/.stem', args: ['--cpu', '2'], user: false, owner: { uid: 1000, gid: 1001 } }

/** the settings of a unit, section by section: { Service: { Restart: ['on-failure'] } } */
function settings (text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {}
  let section = ''
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line)
    if (header != null) { section = header[1]; out[section] = {}; continue }
    const kv = /^(\w+)=(.*)$/.exec(line)
    if (kv != null) (out[section][kv[1]] ??= []).push(kv[2])
  }
  return out
}

describe('cli: stem service unit text', () => {
  it('a system unit runs `stem start` with absolute node, bin and data dir as the data dir\'s owner, restarts on failure, stops with SIGTERM', () => {
    const s = settings(systemdUnit(spec))
    assert.deepEqual(s.Service.ExecStart, ['/opt/node/bin/node --no-node-snapshot --max-semi-space-size=1 /srv/stem/bin/stem.js start --data /home/ann/.stem --cpu 2'])
    assert.deepEqual(s.Service.User, ['1000'])
    assert.deepEqual(s.Service.Group, ['1001'])
    assert.deepEqual(s.Service.Restart, ['on-failure'])
    assert.deepEqual(s.Service.KillSignal, ['SIGTERM'])
    // SIGTERM to the node only: it stops its cell hosts itself as it leaves
    assert.deepEqual(s.Service.KillMode, ['mixed'])
    assert.ok(Number.parseInt(s.Service.TimeoutStopSec[0]) >= 20, 'time for the graceful leave')
    assert.deepEqual(s.Install.WantedBy, ['multi-user.target'])
    assert.deepEqual(s.Unit.After, ['network-online.target'])
  })

  it('a user unit has no User=, no system targets, and is wanted by default.target', () => {
    const s = settings(systemdUnit({ ...spec, user: true }))
    assert.equal(s.Service.User, undefined)
    assert.equal(s.Unit.After, undefined)
    assert.deepEqual(s.Install.WantedBy, ['default.target'])
  })

  it('a data dir owned by root runs as root (no User=)', () => {
    assert.equal(settings(systemdUnit({ ...spec, owner: { uid: 0, gid: 0 } })).Service.User, undefined)
  })

  it('quotes words with spaces and quotes, and escapes % (specifiers) and $ (variables)', () => {
    assert.equal(execWord('/plain/path-1.2/x_y@z'), '/plain/path-1.2/x_y@z')
    assert.equal(execWord('/my dir/x'), '"/my dir/x"')
    assert.equal(execWord('50%'), '50%%')
    assert.equal(execWord('$HOME'), '"$$HOME"')
    assert.equal(execWord('a"b\\c'), '"a\\"b\\\\c"')
    assert.equal(execWord(''), '""')
    assert.equal(execWord(';'), '";"')
    const text = systemdUnit({ ...spec, dataDir: '/data/100% stem' })
    assert.equal(execStartOf(text), '/opt/node/bin/node --no-node-snapshot --max-semi-space-size=1 /srv/stem/bin/stem.js start --data "/data/100%% stem" --cpu 2')
    assert.match(text, /^Description=Stem node \(data dir \/data\/100%% stem\)$/m)
  })

  it('refuses a line break in any word (it would end the setting and start another)', () => {
    assert.throws(() => systemdUnit({ ...spec, dataDir: '/x\nExecStartPre=/bin/rm' }), /line break/)
    assert.throws(() => systemdUnit({ ...spec, args: ['--mesh', 'a\rb'] }), /line break/)
  })

  it('the unit dir: /etc/systemd/system, or the user\'s config dir', () => {
    assert.equal(defaultUnitDir(false, {}), '/etc/systemd/system')
    assert.equal(defaultUnitDir(true, { XDG_CONFIG_HOME: '/home/ann/.cfg' }), '/home/ann/.cfg/systemd/user')
    assert.match(defaultUnitDir(true, {}), /\/\.config\/systemd\/user$/)
  })

  it('startArgsOf gives back the flags `stem start` parses to the same options', () => {
    const argv = ['--listen', '/ip4/0.0.0.0/tcp/4017', '--listen', '/ip6/::/tcp/4017', '--bootstrap', '/ip4/1.2.3.4/tcp/4017/p2p/12D3KooW', '--api', '127.0.0.1:7071',
      '--gateway', '0.0.0.0:8080', '--cpu', '1.5', '--memory', '1536MiB', '--cells', '0', '--mesh', 'friends', '--upnp', '--verbose']
    const parse = (args: string[]): StartFlags => addStartFlags(new Command('start'), 'service').exitOverride().parse(args, { from: 'user' }).opts<StartFlags>()
    const flags = parse(argv)
    assert.deepEqual(startArgsOf(flags), argv)
    assert.deepEqual(parse(startArgsOf(flags)), flags)
    assert.deepEqual(startArgsOf({}), [])
  })
})
