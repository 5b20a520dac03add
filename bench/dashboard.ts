// bench dashboard-push: snapshots of a 100-node, 300-cell mesh delivered to 50 open pages
// per second by the SSE stream (serialised once, written to every page), beside the same 50
// pages polling GET /dashboard/state for it. Server and pages share this process, so both
// figures include the pages' JSON parsing.
import Fastify from 'fastify'
import { createDashboardFeed, registerDashboard } from '../src/dashboard/index.js'
import type { CellInfo, NodeInfo } from '../src/dashboard/types.js'

const pages = 50
const rounds = 40
const GiB = 2 ** 30
const id = (i: number): string => `12D3KooW${String(i).padStart(44, 'A')}`
const nodes: NodeInfo[] = Array.from({ length: 100 }, (_, i) => ({
  id: id(i),
  addrs: [`/ip4/10.0.0.${i}/tcp/4001/p2p/${id(i)}`],
  capacity: { cpu: 8, memory: 16 * GiB, cells: 32 },
  free: { cpu: 4, memory: 8 * GiB, cells: 29 },
  lastSeen: Date.now()
}))
const cells: CellInfo[] = Array.from({ length: 300 }, (_, i) => ({
  app: `app${i % 10}`, address: `app${i % 10}/cell${i}#0`, node: id(i % 100), state: 'transformed', clones: [id((i + 1) % 100)], rate: i / 7
}))
const feed = createDashboardFeed({ self: () => ({ id: id(0), mesh: 'bench', addrs: [] }), nodes: () => nodes, apps: () => [], cells: () => cells })
const fastify = Fastify()
registerDashboard(fastify, { source: feed, coalesceMs: 1, refreshMs: 3_600_000, maxClients: pages + 1, maxBufferedBytes: 64 * 1024 * 1024 })
const url = await fastify.listen({ host: '127.0.0.1', port: 0 })

/** one page's stream: counts `patch` messages, parsing each as the page would */
async function openPage (): Promise<{ patches: () => number, close: () => void }> {
  const controller = new AbortController()
  const res = await fetch(`${url}/dashboard/events`, { signal: controller.signal })
  let patches = 0
  void (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          if (block.startsWith('event: patch\n')) {
            JSON.parse(block.slice(block.indexOf('data: ') + 6))
            patches++
          }
        }
      }
    } catch {}
  })()
  return { patches: () => patches, close: () => { controller.abort() } }
}

async function until (check: () => boolean): Promise<void> {
  while (!check()) await new Promise(resolve => setImmediate(resolve))
}

async function push (): Promise<number> {
  const open = await Promise.all(Array.from({ length: pages }, async () => await openPage()))
  await until(() => feed.snapshot() != null && open.length === pages)
  const start = performance.now()
  for (let r = 1; r <= rounds; r++) {
    feed.changed('nodes', 'cells')
    await until(() => open.every(p => p.patches() >= r))
  }
  const seconds = (performance.now() - start) / 1000
  for (const p of open) p.close()
  return (rounds * pages) / seconds
}

async function poll (): Promise<number> {
  const start = performance.now()
  for (let r = 0; r < rounds; r++) {
    await Promise.all(Array.from({ length: pages }, async () => JSON.parse(await (await fetch(`${url}/dashboard/state`)).text())))
  }
  return (rounds * pages) / ((performance.now() - start) / 1000)
}

await push() // warm-up
const pushed = await push()
await poll() // warm-up
const polled = await poll()
console.log(`bench dashboard-push: ${Math.round(pushed)} snapshots/s to ${pages} pages over SSE (${Math.round(polled)} snapshots/s polling /dashboard/state, ratio ${(pushed / polled).toFixed(2)})`)
await fastify.close()
