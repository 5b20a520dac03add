// `stem start` and `stem join TOKEN`: run a node in the foreground until SIGINT/SIGTERM,
// then leave the mesh gracefully.
import { Option, type Command } from 'commander'
import { createStemNode, type StemNodeOptions } from '../../node/stem-node.js'
import { decodeInvite, InviteError, type Invite } from '../../mesh/invite.js'
import { setLogLevel } from '../../util/logger.js'
import { formatSize } from '../../util/units.js'
import { checkMemory, CliError, collect, dataDirOf, example, EXIT_USAGE, numberOption, sizeOption } from '../context.js'

export interface StartFlags {
  data?: string
  listen?: string[]
  bootstrap?: string[]
  invite?: string
  api?: string
  gateway?: string
  cpu?: number
  memory?: number
  force?: boolean
  cells?: number
  mesh?: string
  upnp?: boolean
  verbose?: boolean
  exitWithStdin?: boolean
}

/**
 * The node's flags, as each command that runs a node takes them: `join` has its token as
 * an argument and joins an existing mesh (no --invite, no --mesh); `service` writes them
 * into a unit that runs `stem start` (no --invite: join once first, the mesh is then in
 * the data dir).
 */
export type StartFlagsOf = 'start' | 'join' | 'service'

export function addStartFlags (command: Command, of: StartFlagsOf = 'start'): Command {
  command
    .option('--data <dir>', 'data directory (default $STEM_DATA or ~/.stem)')
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/4017)', collect)
    .option('--bootstrap <multiaddr>', 'a peer to join through, repeatable', collect)
  if (of === 'start') command.option('--invite <token>', 'join the mesh of this invite token')
  command
    .option('--api <host:port>', 'control API address (default 127.0.0.1:7070)')
    .option('--gateway <host:port>', 'HTTP gateway address')
    .option('--cpu <n>', 'cores to contribute', numberOption('--cpu', false))
    .option('--memory <size>', 'memory to contribute, e.g. 2GiB', sizeOption('--memory'))
    .option('--cells <n>', 'cell slots to contribute', numberOption('--cells', true))
    .option('--force', 'contribute --memory even if it is more than this machine has')
  if (of !== 'join') command.option('--mesh <name>', 'name of a new mesh (default "home")')
  command
    .option('--upnp', 'ask the home router for a port mapping (UPnP IGD / NAT-PMP)')
    .option('--verbose', 'log details')
  // for a parent that starts nodes (`stem demo`): the pipe on stdin closes when that
  // parent dies, even by SIGKILL, and the node then leaves as on SIGTERM
  if (of !== 'service') command.addOption(new Option('--exit-with-stdin', 'leave the mesh and exit when stdin closes').hideHelp())
  return command
}

/** The `stem start` arguments that give a node these flags (what a service unit runs); --data is the caller's. */
export function startArgsOf (flags: Omit<StartFlags, 'data' | 'invite' | 'exitWithStdin'>): string[] {
  const args: string[] = []
  for (const ma of flags.listen ?? []) args.push('--listen', ma)
  for (const ma of flags.bootstrap ?? []) args.push('--bootstrap', ma)
  if (flags.api != null) args.push('--api', flags.api)
  if (flags.gateway != null) args.push('--gateway', flags.gateway)
  if (flags.cpu != null) args.push('--cpu', String(flags.cpu))
  if (flags.memory != null) args.push('--memory', formatSize(flags.memory))
  if (flags.cells != null) args.push('--cells', String(flags.cells))
  if (flags.force === true) args.push('--force')
  if (flags.mesh != null) args.push('--mesh', flags.mesh)
  if (flags.upnp === true) args.push('--upnp')
  if (flags.verbose === true) args.push('--verbose')
  return args
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
  checkMemory(flags)
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
  addStartFlags(program.command('start').description('run a node in the foreground')
    .addHelpText('after', example('stem start --cpu 2 --memory 2GiB --cells 50 --upnp')))
    .action(async (flags: StartFlags) => {
      const invite = flags.invite != null ? decodeOrExit(flags.invite) : undefined
      await runNode(flags, invite)
    })

  addStartFlags(program.command('join').argument('<token>', 'invite token from `stem invite`').description('join a friend\'s mesh with an invite token, then run the node')
    .addHelpText('after', example('stem join stem1… --cpu 1 --memory 1GiB --cells 10')), 'join')
    .action(async (token: string, flags: StartFlags) => {
      await runNode(flags, decodeOrExit(token))
    })
}
