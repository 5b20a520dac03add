// `stem start` and `stem join TOKEN`: run a node in the foreground until SIGINT/SIGTERM,
// then leave the mesh gracefully.
import { readFile } from 'node:fs/promises'
import { Option, type Command } from 'commander'
import type { StemNodeOptions } from '../../node/stem-node.js'
import type { Invite } from '../../mesh/invite.js'
import { nodeNameProblem } from '../../mesh/resources.js'
import { setLogLevel } from '../../util/logger.js'
import { formatSize } from '../../util/units.js'
import { checkMemory, CliError, collect, dataDirOf, example, EXIT_USAGE, numberOption, sizeOption } from '../context.js'

export interface StartFlags {
  data?: string
  listen?: string[]
  bootstrap?: string[]
  invite?: string
  inviteFile?: string
  api?: string
  gateway?: string
  cpu?: number
  memory?: number
  force?: boolean
  cells?: number
  mesh?: string
  name?: string
  upnp?: boolean
  verbose?: boolean
  exitWithStdin?: boolean
}

function nameOption (value: string): string {
  const problem = nodeNameProblem(value)
  if (problem !== undefined) throw new CliError(`--name: ${problem}`, EXIT_USAGE)
  return value
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
  if (of === 'start') command.option('--invite <token>', 'join the mesh of this invite token (visible in ps: prefer --invite-file)')
  if (of !== 'service') command.option('--invite-file <file>', 'join the mesh of the invite token in this file (- for stdin)')
  command
    .option('--api <host:port>', 'control API address (default 127.0.0.1:7070)')
    .option('--gateway <host:port>', 'HTTP gateway address')
    .option('--cpu <n>', 'cores to contribute', numberOption('--cpu', false))
    .option('--memory <size>', 'memory to contribute, e.g. 2GiB', sizeOption('--memory'))
    .option('--cells <n>', 'cell slots to contribute', numberOption('--cells', true))
    .option('--force', 'contribute --memory even if it is more than this machine has')
  if (of !== 'join') command.option('--mesh <name>', 'name of a new mesh (default "home")')
  command.option('--name <name>', 'a name people read for this node (e.g. node-1), shown by stem status, stem peers, the logs and the dashboard', nameOption)
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
  if (flags.name != null) args.push('--name', flags.name)
  if (flags.upnp === true) args.push('--upnp')
  if (flags.verbose === true) args.push('--verbose')
  return args
}

async function decodeOrExit (token: string): Promise<Invite> {
  const { decodeInvite, InviteError } = await import('../../mesh/invite.js')
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
    name: flags.name,
    upnp: flags.upnp === true
  }
}

/** how long `stem join` (or a start with bootstrap addresses) waits to reach the mesh before printing that it has not yet */
const JOIN_WAIT_MS = 15_000

async function runNode (flags: StartFlags, invite: Invite | undefined): Promise<void> {
  checkMemory(flags)
  if (flags.verbose === true) setLogLevel('debug')
  // watched from the start: a parent that dies while the node starts stops it once started
  const orphaned = flags.exitWithStdin === true ? parentGone() : undefined
  // loaded here, not at the top: the node (libp2p, isolated-vm, esbuild) is what makes a CLI call slow
  const { createStemNode } = await import('../../node/stem-node.js')
  const node = createStemNode(nodeOptionsOf(flags, invite))
  await node.start()
  const mesh = node.mesh()
  const stopping = new AbortController()
  const stopped = new Promise<void>(resolve => {
    const onSignal = (signal: string): void => {
      if (stopping.signal.aborted) { process.stderr.write(`${signal} again: exiting at once\n`); process.exit(1) }
      stopping.abort()
      process.stderr.write(`${signal}: leaving the mesh…\n`)
      node.stop().catch(err => { process.stderr.write(`stem: stopping failed: ${(err as Error).message}\n`) }).finally(resolve)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    void orphaned?.then(() => { if (!stopping.signal.aborted) onSignal('stdin closed (the parent is gone)') })
  })
  // a join has joined only once it reaches a peer: it must not look joined when it has not
  let meshLine = `mesh: ${mesh.config.name}`
  if (invite !== undefined || (flags.bootstrap?.length ?? 0) > 0) {
    const reached = await mesh.connected(AbortSignal.any([AbortSignal.timeout(JOIN_WAIT_MS), stopping.signal])).then(() => true, () => false)
    if (stopping.signal.aborted) { await stopped; return }
    if (!reached) {
      meshLine += ' (not joined yet: no bootstrap peer reached; still trying, see the log for why)'
      process.stderr.write(`stem: could not reach the mesh "${mesh.config.name}" within ${JOIN_WAIT_MS / 1000} s; still trying\n`)
    }
  }
  const c = mesh.capacity.contributed()
  const out = [
    `peer id: ${mesh.peerId}`,
    ...(flags.name != null ? [`name: ${flags.name}`] : []),
    meshLine,
    ...mesh.addresses().map(a => `listening: ${a}`),
    `api: ${node.apiUrl()}`,
    ...(node.gatewayUrl() !== '' ? [`gateway: ${node.gatewayUrl()}`] : []),
    `dashboard: ${node.apiUrl()}/dashboard`,
    `contributing: cpu ${c.cpu}, memory ${formatSize(c.memory)}, cells ${c.cells}`,
    ...(flags.upnp === true ? ['upnp: asking the home router for a port mapping'] : [])
  ]
  process.stdout.write(out.join('\n') + '\n')
  await stopped
  // The node has stopped: its state is on disk, its sockets and cell hosts closed. libp2p
  // leaves timers behind (gossipsub's heartbeat, the address manager's debounce) that
  // would hold the process a second or more, and a demo's Ctrl-C waits for every node.
  process.exit()
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

/**
 * The invite token from the command line, a file or stdin ('-'). A token in argv is
 * visible to every local user (`ps`) and kept in shell history; a file or stdin is not.
 */
export async function inviteTokenOf (argument: string | undefined, flags: StartFlags): Promise<string | undefined> {
  const given = [argument, flags.invite, flags.inviteFile].filter(v => v != null)
  if (given.length > 1) throw new CliError('give the invite token once: as TOKEN, -, --invite or --invite-file', EXIT_USAGE)
  const source = argument === '-' ? '-' : flags.inviteFile
  if (source == null) return argument ?? flags.invite
  if (source === '-') {
    if (flags.exitWithStdin === true) throw new CliError('--exit-with-stdin cannot be used with an invite read from stdin', EXIT_USAGE)
    return await readStdin()
  }
  try {
    return await readFile(source, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read the invite file ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT_USAGE)
  }
}

async function readStdin (): Promise<string> {
  let text = ''
  for await (const chunk of process.stdin) {
    text += String(chunk)
    if (text.length > MAX_INVITE_INPUT) throw new CliError(`the invite token on stdin is longer than ${MAX_INVITE_INPUT} characters`, EXIT_USAGE)
  }
  return text
}

/** more than any invite token (decodeInvite refuses long ones with its own message) */
const MAX_INVITE_INPUT = 64 * 1024

export function registerStart (program: Command): void {
  addStartFlags(program.command('start').description('run a node in the foreground')
    .addHelpText('after', example('stem start --cpu 2 --memory 2GiB --cells 50 --upnp')))
    .action(async (flags: StartFlags) => {
      const token = await inviteTokenOf(undefined, flags)
      await runNode(flags, token != null ? await decodeOrExit(token) : undefined)
    })

  addStartFlags(program.command('join').argument('[token]', 'invite token from `stem invite`, or - to read it from stdin (or use --invite-file)').description('join a friend\'s mesh with an invite token, then run the node')
    .addHelpText('after', example('stem join --invite-file invite.txt --cpu 1 --memory 1GiB --cells 10')), 'join')
    .action(async (argument: string | undefined, flags: StartFlags) => {
      const token = await inviteTokenOf(argument, flags)
      if (token == null) throw new CliError('stem join needs an invite token: stem join TOKEN, stem join - (stdin) or stem join --invite-file FILE', EXIT_USAGE)
      await runNode(flags, await decodeOrExit(token))
    })
}
