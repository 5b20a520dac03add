// The stream benches' setting: a mesh of real `stem` processes running one app written to a
// temp dir, and SDK connections to its nodes. `withStreamApp` removes the processes and
// every temp dir however the bench ends.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type StemConnection } from '../../src/messaging/sdk.js'
import { readToken } from '../../src/node/data-dir.js'
import { apiUrlOf, stemJson, stopAll } from '../../scripts/support/stem-process.js'
import { startMesh, type MeshNode } from '../../scripts/support/stem-mesh.js'

export interface StreamApp {
  nodes: MeshNode[]
  /** an SDK connection through the node's API (its URL changes when the node restarts) */
  sdkOf: (node: MeshNode) => Promise<StemConnection>
}

/** `files` (name → text, `app.yaml` among them) published on a mesh of `size` nodes, then `run` */
export async function withStreamApp<T> (size: number, files: Record<string, string>, run: (app: StreamApp) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stem-bench-streams-'))
  try {
    const nodes = await startMesh(size)
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
    await stemJson(['publish', join(dir, 'app.yaml'), '--data', nodes[0].dataDir])
    const sdkOf = async (node: MeshNode): Promise<StemConnection> =>
      connect({ url: await apiUrlOf(node.dataDir), token: await readToken(node.dataDir) })
    return await run({ nodes, sdkOf })
  } finally {
    await stopAll()
    await rm(dir, { recursive: true, force: true })
  }
}
