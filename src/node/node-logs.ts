// The node's log sink for its cell runtime: `stem.log` lines, cell errors and every
// crash, restart and failure of a cell go to the cell log (cell-logs.ts: ring buffer and
// file) and to the node's own log, tagged with the cell address and revision; other
// nodes read them over the logs protocol (log-exchange.ts), the CLI and the dashboard
// through the control API (GET /v1/logs).
import type { FastifyInstance } from 'fastify'
import type { DashboardLogLine } from '../dashboard/index.js'
import { parseAddress } from '../cells/address.js'
import type { CellRuntime } from '../cells/index.js'
import type { CellEventDetail } from '../cells/events.js'
import type { Mesh } from '../mesh/mesh.js'
import type { FrameSigner } from '../wire/frame.js'
import { cellRevision } from '../topology/cell-revision.js'
import { createLogger } from '../util/logger.js'
import { createCellLogs, type CellLogKind, type CellLogLine, type CellLogs } from './cell-logs.js'
import { createLogExchange, type LogExchange } from './log-exchange.js'
import { checkLogQuery } from './log-codec.js'

export interface NodeLogs {
  readonly logs: CellLogs
  readonly exchange: LogExchange
  start: () => Promise<void>
  stop: () => Promise<void>
  /** the recent lines of one cell (`app/cell` or `app/cell#i`) from every node, for the dashboard */
  recent: (address: string) => Promise<DashboardLogLine[]>
  /** GET /v1/logs?app=&cell=&since=&limit=&local=1 on the control API */
  registerRoutes: (api: FastifyInstance) => void
}

/** how a line shows in the node's own log: `counter/counter#0 (rev 1a2b3c4d) log: text` */
export function formatLogLine (line: CellLogLine): string {
  const method = line.method !== undefined ? ` in ${line.method}` : ''
  return `${line.address} (rev ${line.revision.slice(0, 8)}) ${line.kind}${method}: ${line.text}`
}

export function createNodeLogs (mesh: Mesh, runtime: CellRuntime, init: { dataDir: string, signer: FrameSigner }): NodeLogs {
  const nodeLog = createLogger('cell')
  const logs = createCellLogs({
    dataDir: init.dataDir,
    node: mesh.peerId,
    onLine: line => {
      const text = formatLogLine(line) + (line.stack !== undefined ? `\n${line.stack}` : '')
      if (line.kind === 'log') nodeLog.info(text)
      else nodeLog.warn(text)
    }
  })
  const exchange = createLogExchange({
    libp2p: mesh.libp2p,
    signer: init.signer,
    logs,
    peers: () => mesh.capacity.view.list().map(p => p.id)
  }, { mesh: mesh.config.name })

  const revisionOf = (address: string): string => {
    const cell = runtime.cell(address)
    return cell?.hash !== undefined && cell.limits !== undefined ? cellRevision({ bundle: cell.hash, ...cell.limits }) : ''
  }
  const fault = (kind: CellLogKind) => (evt: CustomEvent<CellEventDetail>): void => {
    logs.append({ address: evt.detail.address, revision: revisionOf(evt.detail.address), kind, text: evt.detail.reason ?? kind })
  }
  runtime.addEventListener('cell:log', evt => { logs.append({ address: evt.detail.address, revision: revisionOf(evt.detail.address), kind: 'log', text: evt.detail.text }) })
  runtime.addEventListener('cell:error', evt => {
    const { address, method, message, stack } = evt.detail
    logs.append({ address, revision: revisionOf(address), kind: 'error', text: message, method, ...(stack !== undefined ? { stack } : {}) })
  })
  runtime.addEventListener('cell:crashed', fault('crashed'))
  runtime.addEventListener('cell:restarted', fault('restarted'))
  runtime.addEventListener('cell:failed', fault('failed'))

  return {
    logs,
    exchange,
    async start () {
      await logs.start()
      await exchange.start()
    },
    async stop () {
      await exchange.stop().catch(() => {})
      await logs.stop()
    },
    async recent (address) {
      const { app, cell, replica } = parseAddress(address)
      const { lines } = await exchange.gather({ app, cell: replica === undefined ? cell : `${cell}#${replica}`, limit: 50 }, AbortSignal.timeout(3000))
      return lines.map(l => ({ at: l.ts, node: l.node, address: l.address, kind: l.kind, text: l.stack !== undefined ? `${l.text}\n${l.stack}` : l.text }))
    },
    registerRoutes (api) {
      api.get<{ Querystring: Record<string, string | undefined> }>('/v1/logs', async (request, reply) => {
        const q = request.query
        const number = (text: string | undefined): number | undefined => text === undefined || text === '' ? undefined : Number(text)
        let query
        try {
          query = checkLogQuery({ app: q.app, cell: q.cell, since: number(q.since), limit: number(q.limit) })
        } catch (err) {
          return await reply.code(400).send({ error: (err as Error).message })
        }
        if (q.local === '1') return { lines: logs.query(query), missing: [] }
        return await exchange.gather(query, AbortSignal.timeout(10_000))
      })
    }
  }
}
