// Server-Sent Events fan-out with bounded buffering. Each message is serialised once and
// written to every client; a client whose unsent bytes would pass `maxBufferedBytes` (it
// stopped reading) is disconnected, never buffered without bound (at most the bound plus
// one message is ever held for a client). Heartbeat comments keep
// proxies and idle timeouts from closing quiet streams.
import type { ServerResponse } from 'node:http'

export interface SseHubInit {
  /** concurrent streams; default 64 */
  maxClients?: number
  /** unsent bytes allowed per client before it is dropped; default 1 MiB */
  maxBufferedBytes?: number
  /** ms between heartbeat comments; default 15 s */
  heartbeatMs?: number
  /** the client's reconnect delay sent in `retry:` (ms); default 2 s */
  retryMs?: number
  /** called when the first client arrives and after the last one left */
  onActive?: (active: boolean) => void
}

export interface SseHub {
  /** Takes over `res` as an event stream and writes `first` to it; false if the hub is full or closed. */
  add: (res: ServerResponse, first: string) => boolean
  /** writes one message to every client */
  broadcast: (event: string, data: unknown) => void
  /** ends every stream; later add() calls are refused */
  close: () => void
  readonly size: number
  /** clients disconnected for not reading */
  readonly dropped: number
}

/** One SSE message: `event:` line and the JSON on one `data:` line (JSON has no raw newlines). */
export function formatSse (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export function createSseHub (init: SseHubInit = {}): SseHub {
  const maxClients = init.maxClients ?? 64
  const maxBufferedBytes = init.maxBufferedBytes ?? 1024 * 1024
  const heartbeatMs = init.heartbeatMs ?? 15_000
  const retryMs = init.retryMs ?? 2000
  const clients = new Set<ServerResponse>()
  let dropped = 0
  let closed = false
  let heartbeat: NodeJS.Timeout | undefined

  const remove = (res: ServerResponse): void => {
    if (!clients.delete(res)) return
    if (clients.size === 0) {
      clearInterval(heartbeat)
      heartbeat = undefined
      init.onActive?.(false)
    }
  }

  const write = (res: ServerResponse, chunk: string): void => {
    // A client with nothing pending always gets the message, however large; one that
    // still holds unsent bytes is behind, and is dropped before it passes the bound.
    const pending = res.writableLength
    if (pending > 0 && pending + Buffer.byteLength(chunk) > maxBufferedBytes) {
      dropped++
      remove(res)
      res.destroy()
      return
    }
    res.write(chunk)
  }

  return {
    add: (res, first) => {
      if (closed || clients.size >= maxClients) return false
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no'
      })
      res.socket?.setNoDelay(true)
      clients.add(res)
      res.on('close', () => { remove(res) })
      if (clients.size === 1) {
        heartbeat = setInterval(() => {
          for (const client of [...clients]) write(client, ': heartbeat\n\n')
        }, heartbeatMs)
        heartbeat.unref()
        init.onActive?.(true)
      }
      write(res, `retry: ${retryMs}\n\n` + first)
      return true
    },
    broadcast: (event, data) => {
      if (clients.size === 0) return
      const chunk = formatSse(event, data)
      for (const client of [...clients]) write(client, chunk)
    },
    close: () => {
      closed = true
      for (const client of [...clients]) {
        remove(client)
        client.end()
      }
    },
    get size () { return clients.size },
    get dropped () { return dropped }
  }
}
