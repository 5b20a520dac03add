// The demo's local friend cloud: N real `stem start`/`stem join` child processes on
// loopback, each in its own process group (so stopping one also stops its cell hosts),
// with its own data dir under one base dir, its log in <data>/stem.log.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createApiClient, type ApiClient } from '../../api/client.js'
import { readToken } from '../../node/data-dir.js'
import { NODE_FLAGS } from '../../util/node-flags.js'

export const STEM_BIN = fileURLToPath(new URL('../../../../bin/stem.js', import.meta.url))
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

export interface DemoNode {
  /** 1-based, as the banner numbers them */
  index: number
  dataDir: string
  log: string
  child: ChildProcess
  pid: number
  /** filled from the node's start-up lines */
  peerId: string
  api: string
  gateway: string
  dashboard: string
  exited: Promise<void>
  running: () => boolean
  client: () => Promise<ApiClient>
}

const LINE = (name: string, text: string): string | undefined => new RegExp(`^${name}: (\\S+)$`, 'm').exec(text)?.[1]

/** Spawns one node (handed to `track` at once) and resolves once it printed its API and gateway URLs. */
export async function spawnDemoNode (index: number, baseDir: string, args: string[], track: (node: DemoNode) => void, signal: AbortSignal): Promise<DemoNode> {
  const dataDir = join(baseDir, `node-${index}`)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const log = join(dataDir, 'stem.log')
  const logStream = createWriteStream(log, { flags: 'a' })
  const child = spawn(process.execPath, [...NODE_FLAGS, STEM_BIN, ...args,
    '--name', `node-${index}`, '--data', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--gateway', '127.0.0.1:0', '--exit-with-stdin'], {
    detached: true,
    // a pipe only this process writes to: when the demo dies, even by SIGKILL, the node
    // sees its stdin end and leaves (--exit-with-stdin), so no node outlives the demo
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, STEM_API: '', STEM_DATA: '' }
  })
  let stdout = ''
  let stderr = ''
  let alive = true
  const exited = new Promise<void>(resolve => { child.on('exit', () => { alive = false; logStream.end(); resolve() }) })
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); logStream.write(d) })
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); logStream.write(d) })
  const node: DemoNode = {
    index, dataDir, log, child, pid: child.pid ?? -1, peerId: '', api: '', gateway: '', dashboard: '', exited,
    running: () => alive,
    client: async () => createApiClient(node.api, await readToken(dataDir))
  }
  // tracked from the start: a Ctrl-C during start-up stops it too
  track(node)
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      const api = LINE('api', stdout)
      const gateway = LINE('gateway', stdout)
      const peerId = LINE('peer id', stdout)
      if (api != null && gateway != null && peerId != null) {
        Object.assign(node, { api, gateway, peerId, dashboard: LINE('dashboard', stdout) ?? `${api}/dashboard` })
        finish()
        resolve()
      }
    }
    const onExit = (): void => {
      finish()
      const reason = stderr.trim().split('\n').filter(l => l !== '').pop() ?? 'no message'
      reject(new Error(`node ${index} exited while starting: ${reason} (log: ${log})`))
    }
    const onAbort = (): void => { finish(); reject(new Error('aborted')) }
    const finish = (): void => {
      child.stdout?.off('data', check)
      child.off('exit', onExit)
      signal.removeEventListener('abort', onAbort)
    }
    child.stdout?.on('data', check)
    child.on('exit', onExit)
    signal.addEventListener('abort', onAbort)
    if (signal.aborted) onAbort()
  })
  return node
}

function killGroup (node: DemoNode, signal: NodeJS.Signals): void {
  try {
    process.kill(-node.pid, signal)
  } catch {
    // the group is gone already
  }
}

/**
 * Stops every node: SIGTERM to each node (it leaves the mesh gracefully and stops its
 * cell hosts; a SIGTERM to the whole group would kill the hosts under the hand-over),
 * SIGKILL to the group after `graceMs`. Also sweeps the groups of nodes that died on
 * their own (a `kill -9` leaves its cell hosts to exit by themselves; this makes sure of it).
 */
export async function stopDemoNodes (nodes: DemoNode[], graceMs = 10_000): Promise<void> {
  for (const n of nodes) {
    try { process.kill(n.pid, 'SIGTERM') } catch {}
  }
  const timer = setTimeout(() => { for (const n of nodes) killGroup(n, 'SIGKILL') }, graceMs)
  await Promise.all(nodes.map(async n => n.exited))
  clearTimeout(timer)
  for (const n of nodes) killGroup(n, 'SIGKILL')
}
