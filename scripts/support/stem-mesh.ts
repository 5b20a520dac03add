// A mesh of real `stem` processes that can be stopped and started again with the same data
// dirs and ports (restart tests and `bench restart-recovery`): each node listens on a fixed
// loopback port, so the bootstrap addresses in the joiners' mesh.json stay true.
import { createServer } from 'node:net'
import { spawnStem, stem, stemJson, tempDataDir, type StemProcess } from './stem-process.js'
import { waitFor } from './wait.js'

export interface MeshNode {
  dataDir: string
  listen: string
  /** the running process (the last one started) */
  process: StemProcess
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

/** `count` nodes: the first starts a mesh, the others join it with its invite; each with a gateway. */
export async function startMesh (count: number, extra: string[] = []): Promise<MeshNode[]> {
  const nodes: MeshNode[] = []
  const first = await tempDataDir()
  const listen = `/ip4/127.0.0.1/tcp/${await freePort()}`
  nodes.push({ dataDir: first, listen, process: await spawnStem(['start'], first, ['--gateway', '127.0.0.1:0', ...extra], { listen }).ready() })
  if (count > 1) {
    const invite = await inviteOf(nodes[0])
    for (let i = 1; i < count; i++) nodes.push(await spawnJoiner(invite, extra))
  }
  await meshFormed(nodes)
  return nodes
}

/** A new node joins the mesh of `nodes` (invited by the first); resolves once every node sees every other one. */
export async function joinMesh (nodes: MeshNode[], extra: string[] = []): Promise<MeshNode> {
  const node = await spawnJoiner(await inviteOf(nodes[0]), extra)
  await meshFormed([...nodes, node])
  return node
}

async function inviteOf (node: MeshNode): Promise<string> {
  const invite = await stem(['invite', '--data', node.dataDir])
  if (invite.code !== 0) throw new Error(`stem invite: ${invite.stderr}`)
  return invite.stdout.trim()
}

async function spawnJoiner (invite: string, extra: string[]): Promise<MeshNode> {
  const dir = await tempDataDir()
  const at = `/ip4/127.0.0.1/tcp/${await freePort()}`
  return { dataDir: dir, listen: at, process: await spawnStem(['join', invite], dir, ['--gateway', '127.0.0.1:0', ...extra], { listen: at }).ready() }
}

/** Starts the node again (`stem start`, same data dir and port); resolves once its API is up. */
export async function restartNode (node: MeshNode, extra: string[] = []): Promise<StemProcess> {
  node.process = await spawnStem(['start'], node.dataDir, ['--gateway', '127.0.0.1:0', ...extra], { listen: node.listen }).ready()
  return node.process
}

/** Waits until every node sees every other one. */
export async function meshFormed (nodes: MeshNode[], timeout = 90_000): Promise<void> {
  for (const n of nodes) {
    await waitFor(async () => (await stemJson<{ peers: Array<{ id: string }> }>(['peers', '--data', n.dataDir])).peers.length >= nodes.length - 1, { timeout, what: `${n.dataDir} to see the ${nodes.length - 1} other node(s)` })
  }
}

/** SIGINT (graceful) or SIGKILL to every node at once; resolves once all exited. */
export async function stopNodes (nodes: MeshNode[], signal: 'SIGINT' | 'SIGKILL'): Promise<void> {
  for (const n of nodes) n.process.signal(signal)
  await Promise.all(nodes.map(async n => await n.process.exited))
}

/** the gateway URL `stem start` printed */
export function gatewayOf (p: StemProcess): string {
  const m = /^gateway: (\S+)$/m.exec(p.stdout)
  if (m === null) throw new Error(`no gateway URL printed by the node in ${p.dataDir}`)
  return m[1]
}
