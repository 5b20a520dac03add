// Test doubles and real-HTTP helpers for the gateway tests: a backend whose cells are
// plain functions, a logger that records lines, and a raw HTTP client that sends paths
// exactly as written (fetch would normalise `..` and `//` away).
import { request as httpRequest } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { AskOptions, CellTarget, GatewayBackend } from '../../src/gateway/index.js'

export type CellHandler = (arg: any, call: RecordedAsk) => unknown

export interface RecordedAsk {
  target: CellTarget
  method: string
  args: unknown[]
  options: AskOptions
}

export class FakeBackend implements GatewayBackend {
  readonly asks: RecordedAsk[] = []
  dedupesByMessageId = false
  private readonly handlers = new Map<string, CellHandler>()
  private readonly replicaCounts = new Map<string, number>()

  cell (app: string, cell: string, method: string, handler: CellHandler): this {
    this.handlers.set(`${app}/${cell}.${method}`, handler)
    return this
  }

  setReplicas (app: string, cell: string, n: number): this {
    this.replicaCounts.set(`${app}/${cell}`, n)
    return this
  }

  replicas (app: string, cell: string): number {
    return this.replicaCounts.get(`${app}/${cell}`) ?? 1
  }

  async ask (target: CellTarget, method: string, args: unknown[], options: AskOptions): Promise<unknown> {
    const call = { target, method, args, options }
    this.asks.push(call)
    const handler = this.handlers.get(`${target.app}/${target.cell}.${method}`)
    if (handler == null) throw new Error(`no method ${method} on ${target.app}/${target.cell}`)
    return await handler(args[0], call)
  }
}

export interface LogLine { level: string, bindings: Record<string, unknown>, obj: unknown, msg: unknown }

/** A pino-shaped logger that keeps every line in `lines` (children share the array). */
export function recordingLogger (lines: LogLine[] = [], bindings: Record<string, unknown> = {}): FastifyBaseLogger & { lines: LogLine[] } {
  const at = (level: string) => (obj: unknown, msg?: unknown) => { lines.push({ level, bindings, obj, msg }) }
  return {
    lines,
    level: 'info',
    info: at('info'),
    error: at('error'),
    debug: at('debug'),
    fatal: at('fatal'),
    warn: at('warn'),
    trace: at('trace'),
    silent: () => {},
    child: (more: Record<string, unknown>) => recordingLogger(lines, { ...bindings, ...more })
  } as unknown as FastifyBaseLogger & { lines: LogLine[] }
}

export interface RawResponse { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** Sends one request with the path exactly as given. */
export async function rawRequest (base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

export async function getJson (url: string, init?: RequestInit): Promise<{ status: number, headers: Headers, json: any }> {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : JSON.parse(text) }
}

export async function postJson (url: string, body: unknown, method = 'POST'): Promise<{ status: number, headers: Headers, json: any }> {
  return await getJson(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

/** A promise with its resolve exposed, to hold a cell's answer until a test releases it. */
export function gate<T = unknown> (): { promise: Promise<T>, open: (value: T) => void } {
  const { promise, resolve } = Promise.withResolvers<T>()
  return { promise, open: resolve }
}
