// Stream lag where it can be seen (issue 20): the same figures as `stem stream`, read from
// the same place, each partition cell's `info` (offsets, and each consumer group's
// acknowledged offset and lag). /metrics exports the partitions whose primary runs on this
// node (the pump's), so across the mesh each partition is counted once; the dashboard asks
// every partition of one app, wherever it runs, while a page shows that app.
import { DEAD_LETTER_SUFFIX, partitionCell, partitionOfCell } from '../cells/streams/partition.js'
import type { PartitionInfo } from '../cells/streams/partition-code.js'
import { streamLimits } from '../topology/streams/stream-manifest.js'
import type { DashboardStreamPartition } from '../dashboard/index.js'
import type { StemMetrics } from '../metrics/index.js'

export type InfoAsk = (address: string, method: string, args: unknown[], options: { deadline: number }) => Promise<unknown>

/** ms an `info` ask may take: a scrape or a page waits for the slowest */
const INFO_TIMEOUT_MS = 2000

/** each partition's info, or the first line of why it could not be read */
async function readInfos (addresses: readonly string[], ask: InfoAsk): Promise<Array<{ address: string, info?: PartitionInfo, error?: string }>> {
  const deadline = Date.now() + INFO_TIMEOUT_MS
  return await Promise.all(addresses.map(async address => {
    try {
      return { address, info: await ask(address, 'info', [], { deadline }) as PartitionInfo }
    } catch (err) {
      return { address, error: (err as Error).message.split('\n')[0] }
    }
  }))
}

/**
 * Sets `stem_stream_lag{app,stream,partition,group}` and `stem_stream_next_offset` at each
 * scrape from the partitions `partitions()` names (`app/<stream>-p<i>#0`). A partition
 * that does not answer in time is left out of that scrape.
 */
export function feedStreamMetrics (metrics: StemMetrics, partitions: () => string[], ask: InfoAsk): () => void {
  return metrics.addSource(async () => {
    const read = await readInfos(partitions(), ask)
    metrics.streamLag.reset()
    metrics.streamNextOffset.reset()
    for (const { address, info } of read) {
      if (info === undefined) continue
      const app = address.slice(0, address.indexOf('/'))
      const labels = { app, stream: info.stream, partition: String(info.partition) }
      metrics.streamNextOffset.set(labels, info.next)
      for (const [group, g] of Object.entries(info.groups)) metrics.streamLag.set({ ...labels, group }, g.lag)
    }
  })
}

/**
 * The streams of an app, dead-letter streams included, from its cells' names. A cell named
 * like a partition (`x-p1`) may be the app's own, and must not be asked `info`: a stream is
 * known by its dead-letter partition (`x_dead-p0`), a name no manifest cell can take.
 */
export function appStreams (cells: readonly string[]): string[] {
  const out: string[] = []
  for (const cell of cells) {
    const p = partitionOfCell(cell)
    if (p !== undefined && p.partition === 0 && p.stream.endsWith(DEAD_LETTER_SUFFIX)) out.push(p.stream.slice(0, -DEAD_LETTER_SUFFIX.length), p.stream)
  }
  return out.sort()
}

/**
 * Every partition of the app's streams, in stream and partition order, with its groups;
 * as `stem stream` does, partition 0 tells how many there are.
 */
export async function appStreamPartitions (app: string, cells: readonly string[], ask: InfoAsk): Promise<DashboardStreamPartition[]> {
  const out: DashboardStreamPartition[] = []
  for (const stream of appStreams(cells)) {
    let count: number
    try {
      const answer = await ask(`${app}/${partitionCell(stream, 0)}`, 'partitions', [], { deadline: Date.now() + INFO_TIMEOUT_MS })
      if (typeof answer !== 'number' || !Number.isInteger(answer) || answer < 1 || answer > streamLimits.maxPartitions) throw new Error(`partition 0 answered a bad partition count ${JSON.stringify(answer)}`)
      count = answer
    } catch (err) {
      out.push({ stream, partition: 0, next: null, groups: [], error: (err as Error).message.split('\n')[0] })
      continue
    }
    const read = await readInfos(Array.from({ length: count }, (_, i) => `${app}/${partitionCell(stream, i)}`), ask)
    read.forEach(({ info, error }, partition) => {
      if (info === undefined) out.push({ stream, partition, next: null, groups: [], error: error ?? 'no answer' })
      else out.push({ stream, partition, next: info.next, groups: Object.entries(info.groups).map(([group, g]) => ({ group, acked: g.acked, lag: g.lag })) })
    })
  }
  return out
}
