// Restart benchmark (issue 14): a 3-node mesh of real `stem` processes runs the counter
// example (one clone, durability disk) with acknowledged adds; every node is killed -9 at
// once and `stem start` runs on all three again (same data dirs, same ports).
//   restart-recovery   from the restart to the first answer through a gateway that
//                      carries every acknowledged add, beside the time the mesh alone
//                      takes to re-form (every node sees the two others)
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { apiUrlOf, repoRoot, spawnStem, stemJson, stopAll } from '../scripts/support/stem-process.js'
import { gatewayOf, startMesh, stopNodes, type MeshNode } from '../scripts/support/stem-mesh.js'

const ROUNDS = 2
const ADDS = 20

async function peersSeen (node: MeshNode): Promise<number> {
  const token = (await readFile(join(node.dataDir, 'api-token'), 'utf8')).trim()
  const res = await fetch(`${await apiUrlOf(node.dataDir)}/v1/peers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) })
  return res.status === 200 ? (await res.json() as { peers: unknown[] }).peers.length : 0
}

async function count (gateway: string): Promise<number> {
  const res = await fetch(`${gateway}/counter/count`, { signal: AbortSignal.timeout(2000) })
  return res.status === 200 ? (await res.json() as { count: number }).count : -1
}

async function main (): Promise<void> {
  const nodes = await startMesh(3)
  try {
    await stemJson(['publish', join(repoRoot, 'examples', 'counter', 'app.yaml'), '--data', nodes[0].dataDir])
    const recovered: number[] = []
    const formed: number[] = []
    let acked = 0
    for (let r = 0; r < ROUNDS; r++) {
      const gateway = gatewayOf(nodes[0].process)
      while (await count(gateway) < acked) await delay(50)
      for (let i = 0; i < ADDS; i++) {
        const res = await fetch(`${gateway}/counter/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"by":1}' })
        if (res.status !== 200) throw new Error(`add answered ${res.status}`)
        acked++
      }
      await stopNodes(nodes, 'SIGKILL')
      const start = performance.now()
      for (const n of nodes) n.process = spawnStem(['start'], n.dataDir, ['--gateway', '127.0.0.1:0'], { listen: n.listen })
      await Promise.all(nodes.map(async n => await n.process.ready()))
      let meshAt = 0
      let answerAt = 0
      const deadline = start + 180_000
      while ((meshAt === 0 || answerAt === 0) && performance.now() < deadline) {
        if (meshAt === 0 && (await Promise.all(nodes.map(async n => await peersSeen(n).catch(() => 0)))).every(p => p >= 2)) meshAt = performance.now()
        if (answerAt === 0 && await count(gatewayOf(nodes[0].process)).catch(() => -1) >= acked) answerAt = performance.now()
        await delay(25)
      }
      if (meshAt === 0 || answerAt === 0) throw new Error('the mesh or the counter did not come back within 180 s')
      recovered.push(answerAt - start)
      formed.push(meshAt - start)
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
    console.log(`bench restart-recovery: ${Math.round(mean(recovered))} ms from stem start of 3 nodes (kill -9 of all) to the first answer with every acknowledged add (mesh re-formed in ${Math.round(mean(formed))} ms, ratio ${(mean(recovered) / mean(formed)).toFixed(2)})`)
  } finally {
    await stopAll()
  }
}

await main()
