// `stem start` and `stem join TOKEN`: run a node in the foreground until SIGINT/SIGTERM,
// then leave the mesh gracefully.
import { Option, type Command } from 'commander'
import { createStemNode, type StemNodeOptions } from '../../node/stem-node.js'
import { decodeInvite, InviteError, type Invite } from '../../mesh/invite.js'
import { setLogLevel } from '../../util/logger.js'
import { formatSize } from '../../util/units.js'
import { CliError, collect, dataDirOf, EXIT_USAGE, numberOption, sizeOption } from '../context.js'

export interface StartFlags {
  data?: string
  listen?: string[]
  bootstrap?: string[]
  invite?: string
  api?: string
  gateway?: string
  cpu?: number
  memory?: number
  cells?: number
  mesh?: string
  upnp?: boolean
  verbose?: boolean
  exitWithStdin?: boolean
}

/** the flags `stem start` and `stem join` share */
export function addStartFlags (command: Command): Command {
  return command
    .option('--data <dir>', 'data directory (default $STEM_DATA or ~/.stem)')
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/4017)', collect)
    .option('--bootstrap <multiaddr>', 'a peer to join through, repeatable', collect)
    .option('--invite <token>', 'join the mesh of this invite token')
    .option('--api <host:port>', 'control API address (default 127.0.0.1:7070)')
    .option('--gateway <host:port>', 'HTTP gateway address')
    .option('--cpu <n>', 'cores to contribute', numberOption('--cpu', false))
    .option('--memory <size>', 'memory to contribute, e.g. 2GiB', sizeOption('--memory'))
    .option('--cells <n>', 'cell slots to contribute', numberOption('--cells', true))
    .option('--mesh <name>', 'name of a new mesh (default "home")')
    .option('--upnp', 'ask the home router for a port mapping (UPnP IGD / NAT-PMP)')
    .option('--verbose', 'log details')
    // for a parent that starts nodes (`stem demo`): the pipe on stdin closes when that
    // parent dies, even by SIGKILL, and the node then leaves as on SIGTERM
    .addOption(new Option('--exit-with-stdin', 'leave the mesh and exit when stdin closes').hideHelp())
}

function decodeOrExit (token: string): Invite {
  try {
    return decodeInvite(token)
  } catch (err) {
    if (err instanceof InviteError) throw new CliError(err.message, EXIT_USAGE)
    throw err
  }
}

/** what the parsed flags ask of the node */
export function nodeOptionsOf (flags: StartFlags, invite: Invite | undefined): StemNodeOptions {
  return {
    dataDir: dataDirOf(flags),
    listen: flags.listen,
    bootstrap: flags.bootstrap,
    invite,
    api: flags.api,
    gateway: flags.gateway,
    cpu: flags.cpu,
    memory: flags.memory,
    cells: flags.cells,
    mesh: flags.mesh,
    upnp: flags.upnp === true
  }
}

async function runNode (flags: StartFlags, invite: Invite | undefined): Promise<void> {
  if (flags.verbose === true) setLogLevel('debug')
  // watched from the start: a parent that dies while the node starts stops it once started
  const orphaned = flags.exitWithStdin === true ? parentGone() : undefined
  const node = createStemNode(nodeOptionsOf(flags, invite))
  await node.start()
  const mesh = node.mesh()
  const c = mesh.capacity.contributed()
  const out = [
    `peer id: ${mesh.peerId}`,
    `mesh: ${mesh.config.name}`,
    ...mesh.addresses().map(a => `listening: ${a}`),
    `api: ${node.apiUrl()}`,
    ...(node.gatewayUrl() !== '' ? [`gateway: ${node.gatewayUrl()}`] : []),
    `dashboard: ${node.apiUrl()}/dashboard`,
    `contributing: cpu ${c.cpu}, memory ${formatSize(c.memory)}, cells ${c.cells}`,
    ...(flags.upnp === true ? ['upnp: asking the home router for a port mapping'] : [])
  ]
  process.stdout.write(out.join('\n') + '\n')

  await new Promise<void>(resolve => {
    let stopping = false
    const onSignal = (signal: string): void => {
      if (stopping) { process.stderr.write(`${signal} again: exiting at once\n`); process.exit(1) }
      stopping = true
      process.stderr.write(`${signal}: leaving the mesh…\n`)
      node.stop().catch(err => { process.stderr.write(`stem: stopping failed: ${(err as Error).message}\n`) }).finally(resolve)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    void orphaned?.then(() => { if (!stopping) onSignal('stdin closed (the parent is gone)') })
  })
  // a stdin still being read (--exit-with-stdin, stopped by a signal) would keep the process alive
  if (orphaned !== undefined) process.stdin.destroy()
}

/**
 * Resolves when the parent is gone: stdin ends, or writing our output fails (EPIPE: the
 * parent that read it died; that write can come before stdin's end is seen, and an
 * unhandled EPIPE would end the node at once, without leaving). Output errors are ignored
 * from the start, so the node can leave.
 */
async function parentGone (): Promise<void> {
  await new Promise<void>(resolve => {
    for (const out of [process.stdout, process.stderr]) out.on('error', () => { resolve() })
    // 'end' needs a flowing stream; what the parent writes is ignored
    process.stdin.on('data', () => {})
    process.stdin.once('end', resolve)
    process.stdin.once('error', () => { resolve() })
    process.stdin.resume()
  })
}

export function registerStart (program: Command): void {
  addStartFlags(program.command('start').description('run a node in the foreground'))
    .action(async (flags: StartFlags) => {
      const invite = flags.invite != null ? decodeOrExit(flags.invite) : undefined
      await runNode(flags, invite)
    })

  addStartFlags(program.command('join').argument('<token>', 'invite token from `stem invite`').description('join a friend\'s mesh with an invite token, then run the node'))
    .action(async (token: string, flags: StartFlags) => {
      await runNode(flags, decodeOrExit(token))
    })
}
