// Parent side of multi-process raft clusters (tests and benches): creates each node's
// key (so peer ids are known before start), spawns test/raft/support/raft-node.js per
// node, introduces the nodes to each other, and tracks what they report.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadOrCreateKey, peerIdOf } from '../../../src/wire/keys.js'
import type { RaftNodeConfig } from './raft-node.js'

const NODE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'raft-node.js')

export interface NodeEvent {
  event: string
  [key: string]: unknown
}

export interface ClusterNode {
  index: number
  id: string
  data: string
  child?: ChildProcess
  addrs: string[]
  /** latest leader-change report per group */
  roles: Map<string, { role: string, leader: string, term: number }>
  applied: Map<string, string[]>
  events: NodeEvent[]
  alive: boolean
}

export interface ClusterOptions {
  root: string
  size: number
  groups: string[]
  tickMs: number
  raft: RaftNodeConfig['raft']
  reportApplied: boolean
  proposeOnLeader?: boolean
  mesh?: string
  /** extra node flags for the node processes (e.g. --cpu-prof when profiling a bench) */
  execArgv?: string[]
  /** run node i inside network namespace namespaces[i] (bench/netns), listening on all its interfaces */
  namespaces?: string[]
}

export class RaftCluster {
  readonly nodes: ClusterNode[] = []
  private readonly listeners = new Set<(node: ClusterNode, e: NodeEvent) => void>()

  constructor (private readonly options: ClusterOptions) {}

  async start (): Promise<void> {
    for (let i = 0; i < this.options.size; i++) {
      const data = join(this.options.root, `node${i}`)
      await mkdir(data, { recursive: true })
      const key = await loadOrCreateKey(join(data, 'key'))
      this.nodes.push({ index: i, id: peerIdOf(key.publicKey), data, addrs: [], roles: new Map(), applied: new Map(), events: [], alive: false })
    }
    await Promise.all(this.nodes.map(async n => { await this.spawnNode(n) }))
    this.introduceAll()
  }

  /** Starts (or restarts) a node's process from its data directory. */
  async spawnNode (node: ClusterNode): Promise<void> {
    const config: RaftNodeConfig = {
      data: node.data,
      mesh: this.options.mesh ?? 'test',
      groups: this.options.groups,
      members: this.nodes.map(n => n.id),
      tickMs: this.options.tickMs,
      raft: this.options.raft,
      reportApplied: this.options.reportApplied,
      proposeOnLeader: this.options.proposeOnLeader,
      host: this.options.namespaces === undefined ? undefined : '0.0.0.0'
    }
    const argv = ['--no-node-snapshot', ...(this.options.execArgv ?? []), NODE_SCRIPT, JSON.stringify(config)]
    const ns = this.options.namespaces?.[node.index]
    // `ip netns exec` execs node in place: the child's pid is the node's (kill -9 reaches it)
    const child = ns === undefined
      ? spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] })
    node.child = child
    node.roles.clear()
    const ready = new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => { reject(new Error(`raft node ${node.index} exited with ${String(code)} before it was ready`)) })
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let e: NodeEvent
        try { e = JSON.parse(line) } catch { return }
        this.record(node, e)
        if (e.event === 'ready') {
          node.addrs = e.addrs as string[]
          node.alive = true
          resolve()
        }
      })
    })
    child.on('exit', () => { node.alive = false })
    await ready
  }

  introduceAll (): void {
    for (const n of this.nodes) {
      if (!n.alive) continue
      this.send(n, { cmd: 'peers', peers: this.nodes.filter(o => o !== n && o.alive).map(o => ({ id: o.id, addrs: o.addrs })) })
    }
  }

  private record (node: ClusterNode, e: NodeEvent): void {
    if (e.event === 'leader') node.roles.set(e.group as string, { role: e.role as string, leader: e.leader as string, term: e.term as number })
    if (e.event === 'applied') {
      const list = node.applied.get(e.group as string) ?? []
      list.push(e.data as string)
      node.applied.set(e.group as string, list)
    }
    if (e.event !== 'applied') node.events.push(e)
    for (const l of this.listeners) l(node, e)
  }

  send (node: ClusterNode, cmd: object): void {
    node.child?.stdin?.write(JSON.stringify(cmd) + '\n')
  }

  /** Resolves with the next event of this kind (or of any of these kinds) from the node. */
  async next (node: ClusterNode, event: string | string[], timeoutMs = 60_000): Promise<NodeEvent> {
    const kinds = Array.isArray(event) ? event : [event]
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.listeners.delete(l); reject(new Error(`no ${kinds.join('/')} event from node ${node.index} within ${timeoutMs} ms`)) }, timeoutMs)
      const l = (n: ClusterNode, e: NodeEvent): void => {
        if (n !== node || !kinds.includes(e.event)) return
        clearTimeout(timer)
        this.listeners.delete(l)
        resolve(e)
      }
      this.listeners.add(l)
    })
  }

  /** The node's stats and (unless brief) every group's status. */
  async status (node: ClusterNode, brief = false): Promise<NodeEvent> {
    const reply = this.next(node, 'status')
    this.send(node, { cmd: 'status', brief })
    return reply
  }

  /** Calls `fn` for every event from now on, until the returned function is called. */
  onEvent (fn: (node: ClusterNode, e: NodeEvent) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** The live node that reports itself leader of `group`, if exactly one does. */
  leader (group: string): ClusterNode | undefined {
    const leaders = this.nodes.filter(n => n.alive && n.roles.get(group)?.role === 'leader')
    return leaders.length === 1 ? leaders[0] : undefined
  }

  /**
   * kill -9 of `leader`, then the time (ms) until another node applies a newer leader's
   * election entry in `group` ("elected <term>" above `term`); the killed node is restarted after.
   */
  async timeFailover (group: string, leader: ClusterNode, term: number, timeoutMs: number, label: string): Promise<number> {
    const committed = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { off(); reject(new Error(`${label}: no commit by a new leader within ${timeoutMs} ms`)) }, timeoutMs)
      const off = this.onEvent((node, e) => {
        if (node === leader || e.event !== 'applied' || e.group !== group || typeof e.data !== 'string' || !e.data.startsWith('elected ')) return
        if (Number(e.data.slice(8)) <= term) return
        off()
        clearTimeout(timer)
        resolve(performance.now())
      })
    })
    const killedAt = performance.now()
    this.kill(leader)
    const elapsed = await committed - killedAt
    leader.applied.set(group, [])
    await this.spawnNode(leader)
    this.introduceAll()
    return elapsed
  }

  kill (node: ClusterNode): void {
    node.child?.kill('SIGKILL')
    node.alive = false
  }

  async stop (): Promise<void> {
    await Promise.all(this.nodes.map(async n => {
      const child = n.child
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.stdin?.end()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }))
  }
}
