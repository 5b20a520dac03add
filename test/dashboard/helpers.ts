// Shared pieces of the dashboard tests: a small mesh picture behind a real
// createDashboardFeed, a Fastify server on port 0, and an SSE reader over fetch.
import Fastify, { type FastifyInstance } from 'fastify'
import { createDashboardFeed, registerDashboard, type DashboardFeed, type DashboardHandle, type DashboardOptions } from '../../src/dashboard/index.js'
import type { AppInfo, CellInfo, NodeInfo } from '../../src/dashboard/types.js'

export const GiB = 2 ** 30
export const peerA = '12D3KooW' + 'A'.repeat(42) + 'a1'
export const peerB = '12D3KooW' + 'B'.repeat(42) + 'b2'
export const peerC = '12D3KooW' + 'C'.repeat(42) + 'c3'

export interface MeshPicture {
  nodes: NodeInfo[]
  apps: AppInfo[]
  cells: CellInfo[]
}

/** three nodes, app `shop` led by A with a counter on B cloned to C; A (this node) reaches B by webrtc, C relayed */
export function threeNodeMesh (now = Date.now()): MeshPicture {
  const node = (id: string, cells: number, free: number, self = false, path?: NodeInfo['path']): NodeInfo => ({
    id,
    addrs: [`/ip4/127.0.0.1/tcp/${4000 + cells}/p2p/${id}`],
    capacity: { cpu: 4, memory: 8 * GiB, cells },
    free: { cpu: 3, memory: 6 * GiB, cells: free },
    lastSeen: now,
    ...(self ? { self: true } : {}),
    ...(path !== undefined ? { path } : {})
  })
  return {
    // A reaches B over a hole-punched WebRTC connection, C only through a relay
    nodes: [node(peerA, 10, 8, true), node(peerB, 8, 6, false, 'webrtc'), node(peerC, 6, 5, false, 'relayed')],
    apps: [{ app: 'shop', owner: peerA, leader: peerA, term: 3, members: [peerA, peerB, peerC] }],
    cells: [
      { app: 'shop', address: 'shop/counter#0', node: peerB, state: 'transformed', clones: [peerC], rate: 12.5 },
      { app: 'shop', address: 'shop/pricing#0', node: peerA, state: 'transformed', clones: [], rate: 3 },
      { app: 'shop', address: 'shop/pricing#1', node: peerC, state: 'stem', clones: [], rate: 0 }
    ]
  }
}

export interface TestDashboard {
  fastify: FastifyInstance
  url: string
  feed: DashboardFeed
  mesh: MeshPicture
  handle: DashboardHandle
  /** subscribers currently attached to the feed */
  subscribers: () => number
  close: () => Promise<void>
}

export async function startDashboard (options: Partial<DashboardOptions> = {}, mesh: MeshPicture = threeNodeMesh()): Promise<TestDashboard> {
  const feed = createDashboardFeed({
    self: () => ({ id: peerA, mesh: 'friends', addrs: mesh.nodes[0].addrs }),
    nodes: () => mesh.nodes,
    apps: () => mesh.apps,
    cells: () => mesh.cells
  })
  let subscribers = 0
  const counted: DashboardFeed = {
    ...feed,
    subscribe: listener => {
      subscribers++
      const off = feed.subscribe(listener)
      return () => { subscribers--; off() }
    }
  }
  const fastify = Fastify()
  const handle = registerDashboard(fastify, { source: counted, ...options })
  const url = await fastify.listen({ host: '127.0.0.1', port: 0 })
  let closed = false
  return {
    fastify,
    url,
    feed,
    mesh,
    handle,
    subscribers: () => subscribers,
    close: async () => {
      if (closed) return
      closed = true
      await fastify.close()
    }
  }
}

export interface SseMessage {
  event: string
  data: unknown
}

export interface SseReader {
  status: number
  /** the next message (skipping those that do not match `event`) */
  next: (event?: string) => Promise<SseMessage>
  /** resolves when the server ended the stream */
  ended: Promise<void>
  /** comment lines seen (heartbeats) */
  comments: () => number
  close: () => void
}

export async function openSse (url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const controller = new AbortController()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  const queue: SseMessage[] = []
  const waiters: Array<() => void> = []
  let comments = 0
  let done = false
  const wake = (): void => { for (const w of waiters.splice(0)) w() }

  const ended = (async () => {
    if (res.body == null) return
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true })
        let cut: number
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          let event = 'message'
          let data: string | undefined
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments++
            else if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data = line.slice(6)
          }
          if (data !== undefined) queue.push({ event, data: JSON.parse(data) })
        }
        wake()
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err
    } finally {
      done = true
      wake()
    }
  })()
  ended.catch(() => {})

  const next = async (event?: string): Promise<SseMessage> => {
    for (;;) {
      const i = queue.findIndex(m => event === undefined || m.event === event)
      if (i >= 0) return queue.splice(i, 1)[0]
      if (done) throw new Error(`stream ended before a ${event ?? 'message'} arrived`)
      await new Promise<void>(resolve => waiters.push(resolve))
    }
  }

  return { status: res.status, next, ended, comments: () => comments, close: () => { controller.abort() } }
}

/** a promise that rejects if `p` takes longer than `ms` (a deadline, not a timing assertion) */
export async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out: ${what}`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
