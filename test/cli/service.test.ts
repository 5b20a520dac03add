// `stem service install/status/uninstall` through bin/stem.js, always with the hidden
// --unit-dir (a temp dir; systemctl is never run, nothing is enabled), and the written
// unit checked by `systemd-analyze verify`.
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runToEnd, stem, type CliResult } from '../support/stem-process.js'

async function systemdAnalyze (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return await runToEnd('systemd-analyze', args, { env: { ...process.env, ...env } })
}

const haveSystemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].some(p => existsSync(p))

describe('cli: stem service', function () {
  this.timeout(240_000)
  let dir: string
  let units: string
  let data: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-service-'))
    units = join(dir, 'units')
    data = join(dir, 'my data')
    await mkdir(data)
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('install writes a unit running `stem start` with the data dir and flags; status shows it; uninstall removes it', async () => {
    const install = await stem(['service', 'install', '--unit-dir', units, '--data', data, '--cpu', '2', '--memory', '2GiB', '--upnp'])
    assert.equal(install.code, 0, install.stderr)
    assert.equal(install.stdout, `wrote ${join(units, 'stem.service')}\nsystemctl not run (--unit-dir)\n`)
    const unit = await readFile(join(units, 'stem.service'), 'utf8')
    assert.match(unit, /^ExecStart=\/\S+\/node --no-node-snapshot --max-semi-space-size=1 \/\S+\/bin\/stem\.js start --data "\/\S+\/my data" --cpu 2 --memory 2GiB --upnp$/m)
    assert.match(unit, /^WantedBy=multi-user\.target$/m)

    const status = await stem(['service', 'status', '--unit-dir', units, '--json'])
    assert.equal(status.code, 0, status.stderr)
    const s = JSON.parse(status.stdout) as { unit: string, execStart: string, active: string }
    assert.equal(s.unit, join(units, 'stem.service'))
    assert.match(s.execStart, /start --data "\/\S+\/my data" --cpu 2/)

    const uninstall = await stem(['service', 'uninstall', '--unit-dir', units])
    assert.equal(uninstall.code, 0, uninstall.stderr)
    assert.ok(!existsSync(join(units, 'stem.service')))
  })

  it('install again replaces the unit with the new flags', async () => {
    assert.equal((await stem(['service', 'install', '--unit-dir', units, '--data', data, '--cpu', '2'])).code, 0)
    assert.equal((await stem(['service', 'install', '--unit-dir', units, '--data', data, '--cells', '7'])).code, 0)
    const unit = await readFile(join(units, 'stem.service'), 'utf8')
    assert.match(unit, /--cells 7$/m)
    assert.doesNotMatch(unit, /--cpu/)
  })

  it('refuses bad input with one line and writes nothing', async () => {
    const cases: Array<{ args: string[], code: number, error: RegExp }> = [
      { args: ['--data', join(dir, 'missing')], code: 2, error: /^stem: data dir \S+missing does not exist \(run `stem join TOKEN --data/ },
      { args: ['--data', data, '--bogus'], code: 2, error: /^error: unknown option '--bogus'/ },
      { args: ['--data', data, '--invite', 'stem1x'], code: 2, error: /^error: unknown option '--invite'/ },
      { args: ['--data', data, '--memory', 'lots'], code: 2, error: /^stem: --memory: "lots" is not a size/ },
      { args: ['--data', data, '--memory', '2GB'], code: 2, error: /^stem: --memory: "2GB" is in decimal units: use binary units \(MiB, GiB\), e\.g\. 2GiB\n/ },
      { args: ['--data', data, '--memory', '100TiB'], code: 2, error: /^stem: --memory 100TiB is more than this machine's memory .*--force/ },
      { args: ['--data', data, '--mesh', 'a\nb'], code: 1, error: /^stem: a line break cannot go into a unit file/ }
    ]
    await writeFile(join(dir, 'file'), '')
    cases.push({ args: ['--data', join(dir, 'file')], code: 2, error: /^stem: data dir \S+file is not a directory/ })
    for (const c of cases) {
      const r = await stem(['service', 'install', '--unit-dir', units, ...c.args])
      assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, c.error)
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr)
      assert.ok(!existsSync(join(units, 'stem.service')), `${c.args.join(' ')} wrote a unit`)
    }
    for (const sub of ['status', 'uninstall']) {
      const r = await stem(['service', sub, '--unit-dir', units])
      assert.equal(r.code, 1)
      assert.equal(r.stderr, `stem: no stem service installed: ${join(units, 'stem.service')} does not exist\n`)
    }
  })

  describe('with systemctl (a fake one on PATH that logs its arguments; the unit in a temp XDG_CONFIG_HOME)', () => {
    let env: NodeJS.ProcessEnv
    let log: string
    let unit: string

    beforeEach(async () => {
      const bin = join(dir, 'fake-bin')
      await mkdir(bin)
      log = join(dir, 'systemctl.log')
      await writeFile(join(bin, 'systemctl'), `#!/bin/sh
echo "$*" >> "$FAKE_SYSTEMCTL_LOG"
case "$*" in *"$FAKE_SYSTEMCTL_FAIL"*) if [ -n "$FAKE_SYSTEMCTL_FAIL" ]; then echo "Failed to connect to bus: No medium found" >&2; exit 1; fi ;; esac
case "$*" in *is-active*) echo active ;; *is-enabled*) echo enabled ;; esac
`, { mode: 0o755 })
      env = { PATH: `${bin}:${process.env.PATH ?? ''}`, XDG_CONFIG_HOME: join(dir, 'config'), FAKE_SYSTEMCTL_LOG: log, FAKE_SYSTEMCTL_FAIL: '' }
      unit = join(dir, 'config', 'systemd', 'user', 'stem.service')
    })
    const calls = async (): Promise<string[]> => existsSync(log) ? (await readFile(log, 'utf8')).trimEnd().split('\n') : []

    it('install --user reloads, enables and (re)starts the unit; status asks its state; uninstall disables it before removing it', async () => {
      const install = await stem(['service', 'install', '--user', '--data', data, '--cells', '3'], env)
      assert.equal(install.code, 0, install.stderr)
      assert.match(install.stdout, /^wrote \S+\/config\/systemd\/user\/stem\.service\nenabled and started stem\.service/)
      assert.match(install.stdout, /loginctl enable-linger/)
      assert.match(await readFile(unit, 'utf8'), /^WantedBy=default\.target$/m)
      assert.deepEqual(await calls(), ['--user daemon-reload', '--user enable stem.service', '--user restart stem.service'])

      const status = await stem(['service', 'status', '--user', '--json'], env)
      assert.equal(status.code, 0, status.stderr)
      const st = JSON.parse(status.stdout) as { unit: string, execStart: string, active: string, enabled: string }
      assert.equal(st.unit, unit)
      assert.match(st.execStart, / start --data "[^"]+\/my data" --cells 3$/)
      assert.equal(st.active, 'active')
      assert.equal(st.enabled, 'enabled')

      const uninstall = await stem(['service', 'uninstall', '--user'], env)
      assert.equal(uninstall.code, 0, uninstall.stderr)
      assert.ok(!existsSync(unit))
      assert.deepEqual((await calls()).slice(5), ['--user disable --now stem.service', '--user daemon-reload'])
    })

    it('a failing systemctl is one line naming the command, and uninstall then keeps the unit', async () => {
      assert.equal((await stem(['service', 'install', '--user', '--data', data], env)).code, 0)
      const r = await stem(['service', 'uninstall', '--user'], { ...env, FAKE_SYSTEMCTL_FAIL: 'disable' })
      assert.equal(r.code, 1)
      assert.equal(r.stderr, 'stem: systemctl --user disable --now stem.service failed: Failed to connect to bus: No medium found\n')
      assert.ok(existsSync(unit), 'the unit was removed although it could not be disabled')

      const install = await stem(['service', 'install', '--user', '--data', data], { ...env, FAKE_SYSTEMCTL_FAIL: 'daemon-reload' })
      assert.equal(install.code, 1)
      assert.equal(install.stderr, 'stem: systemctl --user daemon-reload failed: Failed to connect to bus: No medium found\n')
    })
  })

  it('systemd-analyze verify accepts the system and the user unit without a warning', async function () {
    if (!haveSystemdAnalyze) this.skip() // systemd-analyze is not installed (Debian: apt-get install systemd); .ci/run installs it
    for (const user of [false, true]) {
      const out = join(dir, user ? 'user-units' : 'units')
      const r = await stem(['service', 'install', '--unit-dir', out, '--data', data, '--listen', '/ip4/0.0.0.0/tcp/4017', '--memory', '1GiB', ...(user ? ['--user'] : [])])
      assert.equal(r.code, 0, r.stderr)
      // a user manager needs a runtime dir; a private one keeps it off the real session
      const runtime = join(dir, `run-${String(user)}`)
      await mkdir(runtime, { mode: 0o700 })
      const v = await systemdAnalyze([...(user ? ['--user'] : []), 'verify', join(out, 'stem.service')], { XDG_RUNTIME_DIR: runtime })
      assert.equal(v.code, 0, v.stderr)
      assert.equal(v.stderr, '', `systemd-analyze ${user ? '--user ' : ''}verify warned`)
    }
  })

  it('systemd-analyze verify (the check above) does reject a unit whose program is missing', async function () {
    if (!haveSystemdAnalyze) this.skip() // systemd-analyze is not installed
    await mkdir(units)
    await writeFile(join(units, 'stem.service'), '[Service]\nExecStart=/nonexistent/node start\n[Install]\nWantedBy=multi-user.target\n')
    const v = await systemdAnalyze(['verify', join(units, 'stem.service')])
    assert.notEqual(v.code, 0)
  })
})
