// The publisher's bundle for a stream partition's cell: Stem's partition code
// (cells/streams/partition-code.ts) with the stream's settings baked in, signed by the
// owner like any cell's bundle.
import { signBundle, type CellBundle } from '../cells/bundle.js'
import { partitionSource, PARTITION_MAX_BYTES } from '../cells/streams/partition-code.js'
import type { CellSpec } from '../topology/manifest.js'
import type { GeneratedPartition } from '../topology/streams/stream-manifest.js'
import type { PrivateKey } from '../wire/keys.js'

export async function partitionBundle (app: string, p: GeneratedPartition, spec: CellSpec, owner: PrivateKey): Promise<CellBundle> {
  const code = partitionSource({
    stream: p.stream,
    partition: p.partition,
    partitions: p.spec.partitions,
    retention: p.spec.retention,
    ...(p.spec.retentionMs !== undefined ? { retentionMs: p.spec.retentionMs } : {}),
    maxBytes: PARTITION_MAX_BYTES,
    consumers: p.consumers
  })
  return await signBundle({ app, cell: p.cell, entry: `${p.cell}.js`, code, limits: { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox } }, owner)
}
