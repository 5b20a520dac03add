// The systemd unit of `stem service install`, as text: a pure function of what the node
// runs with, so its content is tested without systemd and `systemd-analyze verify` checks it.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { NODE_FLAGS } from '../../util/node-flags.js'

export const UNIT_NAME = 'stem.service'

/** what SIGTERM's graceful leave may take before systemd sends SIGKILL (cell hosts stop, peers are told) */
export const STOP_TIMEOUT_SECONDS = 30

export interface UnitSpec {
  /** absolute path of the Node.js binary (Node 24) */
  node: string
  /** absolute path of bin/stem.js */
  bin: string
  /** absolute data dir of the node */
  dataDir: string
  /** further `stem start` arguments */
  args: string[]
  /** a user unit (`systemctl --user`, started with the user's manager) rather than a system unit */
  user: boolean
  /** a system unit runs the node as the data dir's owner (omitted for root) */
  owner?: { uid: number, gid: number }
}

/** `%` starts a systemd specifier in every setting; `%%` is a literal one */
function escapeSpecifiers (text: string): string {
  return text.replace(/%/g, '%%')
}

function refuseLineBreaks (text: string): void {
  if (/[\r\n]/.test(text)) throw new Error(`a line break cannot go into a unit file: ${JSON.stringify(text)}`)
}

/** One ExecStart= word: specifiers and `$` escaped, quoted when it holds anything but plain path characters. */
export function execWord (word: string): string {
  refuseLineBreaks(word)
  const escaped = escapeSpecifiers(word).replace(/\$/g, () => '$$')
  if (/^[\w@%+=:,./-]+$/.test(escaped)) return escaped
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export function systemdUnit (spec: UnitSpec): string {
  refuseLineBreaks(spec.dataDir)
  const exec = [spec.node, ...NODE_FLAGS, spec.bin, 'start', '--data', spec.dataDir, ...spec.args].map(execWord).join(' ')
  const runAs = !spec.user && spec.owner != null && spec.owner.uid !== 0 ? [`User=${spec.owner.uid}`, `Group=${spec.owner.gid}`] : []
  return [
    '# Written by `stem service install`; remove it with `stem service uninstall`.',
    '[Unit]',
    `Description=Stem node (data dir ${escapeSpecifiers(spec.dataDir)})`,
    // a user manager cannot order itself after the system's network target
    ...(spec.user ? [] : ['Wants=network-online.target', 'After=network-online.target']),
    '',
    '[Service]',
    'Type=exec',
    `ExecStart=${exec}`,
    ...runAs,
    'Restart=on-failure',
    'RestartSec=5s',
    // SIGTERM to the node alone: it leaves the mesh and stops its own cell hosts; whatever
    // is left after the timeout gets SIGKILL
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${STOP_TIMEOUT_SECONDS}s`,
    '',
    '[Install]',
    `WantedBy=${spec.user ? 'default.target' : 'multi-user.target'}`,
    ''
  ].join('\n')
}

/** where systemd looks for units the admin (or, with `user`, this user) installed */
export function defaultUnitDir (user: boolean, env: NodeJS.ProcessEnv = process.env): string {
  if (!user) return '/etc/systemd/system'
  const config = env.XDG_CONFIG_HOME != null && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  return join(config, 'systemd', 'user')
}

/** the ExecStart= line of a unit's text, as written */
export function execStartOf (unitText: string): string | undefined {
  return /^ExecStart=(.*)$/m.exec(unitText)?.[1]
}
