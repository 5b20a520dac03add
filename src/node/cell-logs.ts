// The node's cell log: `stem.log` lines, cell errors and every crash, restart and failure
// of a cell that ran on this node, each tagged with the cell's address and revision. Kept
// in a ring buffer (what `stem logs` and the dashboard read) and appended to
// <data>/cell-logs.jsonl (one JSON object a line; rotated to cell-logs.1.jsonl past
// maxFileBytes), from which a restarted node reloads its recent lines. Not fsynced: logs
// are a diagnosis aid, not state.
import { appendFile, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'

export const LOG_KINDS = ['log', 'error', 'crashed', 'restarted', 'failed'] as const
export type CellLogKind = typeof LOG_KINDS[number]

export interface CellLogLine {
  /** ms since the epoch, on the node that wrote it */
  ts: number
  /** per node, increasing */
  seq: number
  /** peer id of the node the cell ran on */
  node: string
  address: string
  revision: string
  kind: CellLogKind
  text: string
  /** errors: the method that threw */
  method?: string
  /** errors: the stack, mapped to the original sources */
  stack?: string
}

export interface CellLogQuery {
  app: string
  /** `cell` (every instance) or `cell#i`; all cells of the app without it */
  cell?: string
  /** ms since the epoch: lines at or after it */
  since?: number
  /** at most this many lines, the newest (default and cap: MAX_QUERY_LINES) */
  limit?: number
}

export interface CellLogsInit {
  dataDir: string
  /** this node's peer id */
  node: string
  /** lines kept in memory (default 5000) */
  capacity?: number
  /** the file is rotated past this size (default 8 MiB) */
  maxFileBytes?: number
  /** each appended line, e.g. to the node's own log */
  onLine?: (line: CellLogLine) => void
}

export interface CellLogs {
  /** loads the lines of the last run from the file */
  start: () => Promise<void>
  /** waits for pending file writes */
  stop: () => Promise<void>
  append: (entry: Omit<CellLogLine, 'ts' | 'seq' | 'node'>) => CellLogLine
  query: (query: CellLogQuery) => CellLogLine[]
}

export const MAX_QUERY_LINES = 2000
/** a stored or received text longer than this is cut */
export const MAX_TEXT_CHARS = 8192
export const MAX_STACK_CHARS = 8192

export const cellLogFile = (dataDir: string): string => join(dataDir, 'cell-logs.jsonl')

/** Whether `address` (app/cell#i) is one of the cells `query` asks for. */
export function matchesQuery (address: string, query: CellLogQuery): boolean {
  if (!address.startsWith(`${query.app}/`)) return false
  if (query.cell === undefined || query.cell === '') return true
  const rest = address.slice(query.app.length + 1)
  return rest === query.cell || (!query.cell.includes('#') && rest.startsWith(`${query.cell}#`))
}

/** Sorts lines of several nodes into one time order (ties: node, then its sequence). */
export function mergeLines (lines: CellLogLine[]): CellLogLine[] {
  return lines.sort((a, b) => a.ts - b.ts || (a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq))
}

/** A line read from a file or the wire, checked; undefined if it is not one. */
export function toLogLine (value: unknown): CellLogLine | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const v = value as Record<string, unknown>
  const str = (x: unknown): x is string => typeof x === 'string'
  if (typeof v.ts !== 'number' || !Number.isSafeInteger(v.ts) || typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq)) return undefined
  if (!str(v.node) || !str(v.address) || !str(v.revision) || !str(v.text) || !(LOG_KINDS as readonly unknown[]).includes(v.kind)) return undefined
  if ((v.method !== undefined && !str(v.method)) || (v.stack !== undefined && !str(v.stack))) return undefined
  return {
    ts: v.ts,
    seq: v.seq,
    node: v.node,
    address: v.address,
    revision: v.revision,
    kind: v.kind as CellLogKind,
    text: v.text.slice(0, MAX_TEXT_CHARS),
    ...(str(v.method) && v.method !== '' ? { method: v.method } : {}),
    ...(str(v.stack) && v.stack !== '' ? { stack: v.stack.slice(0, MAX_STACK_CHARS) } : {})
  }
}

export function createCellLogs (init: CellLogsInit): CellLogs {
  const capacity = init.capacity ?? 5000
  const maxFileBytes = init.maxFileBytes ?? 8 * 1024 * 1024
  const file = cellLogFile(init.dataDir)
  const ring: CellLogLine[] = []
  let seq = 0
  let fileBytes = 0
  // writes happen one after another, in order
  let writing: Promise<void> = Promise.resolve()

  const keep = (line: CellLogLine): void => {
    ring.push(line)
    if (ring.length > capacity) ring.splice(0, ring.length - capacity)
  }

  const write = (text: string): void => {
    writing = writing.then(async () => {
      if (fileBytes + text.length > maxFileBytes) {
        await rename(file, join(init.dataDir, 'cell-logs.1.jsonl')).catch(() => {})
        fileBytes = 0
      }
      await appendFile(file, text, { mode: 0o600 })
      fileBytes += Buffer.byteLength(text)
    }).catch(() => {})
  }

  return {
    async start () {
      let text = ''
      try {
        fileBytes = (await stat(file)).size
        text = await readFile(file, 'utf8')
      } catch {
        return
      }
      for (const row of text.split('\n')) {
        if (row === '') continue
        let parsed: unknown
        try { parsed = JSON.parse(row) } catch { continue }
        const line = toLogLine(parsed)
        if (line === undefined) continue
        keep(line)
        seq = Math.max(seq, line.seq)
      }
    },
    async stop () {
      await writing
    },
    append (entry) {
      const line: CellLogLine = {
        ...entry,
        ts: Date.now(),
        seq: ++seq,
        node: init.node,
        text: entry.text.slice(0, MAX_TEXT_CHARS),
        ...(entry.stack !== undefined ? { stack: entry.stack.slice(0, MAX_STACK_CHARS) } : {})
      }
      keep(line)
      write(JSON.stringify(line) + '\n')
      init.onLine?.(line)
      return line
    },
    query (query) {
      const limit = Math.min(query.limit ?? MAX_QUERY_LINES, MAX_QUERY_LINES)
      const since = query.since ?? 0
      const found = ring.filter(l => l.ts >= since && matchesQuery(l.address, query))
      return found.slice(Math.max(0, found.length - limit))
    }
  }
}
