// The dead-letter stream `<stream>.dead` (declared by the manifest parser for every stream,
// stream-manifest.ts): the pump appends there a record its consumer kept refusing, with
// the error, before it skips the record. One partition, keyed like the original record;
// exactly once: the append names the record's place (`<stream>/<partition>/<group>`, its
// reset generation and offset), and the dead-letter partition answers a repeat of it (the
// pump retrying after a lost answer, or a failover between the append and the skip) with
// the first copy's offset instead of appending it again (partition-code.ts `from`).
import { DEAD_LETTER_SUFFIX, deadLetterStream, partitionCell } from '../../cells/streams/partition.js'
import type { CellErrorInfo } from '../../cells/reply-meta.js'

/** one record of `<stream>.dead` */
export interface DeadLetter {
  /** where the record was: its stream, partition and offset */
  stream: string
  partition: number
  offset: number
  key: string | null
  /** ms since the epoch it was appended to its stream */
  time: number
  /** the consumer group that refused it, and the instance it was delivered to */
  group: string
  consumer: string
  /** deliveries of the record alone that threw */
  attempts: number
  /** the first line of the last error, at most MAX_ERROR characters */
  error: string
  /** the record; null (and `dropped` set) when it and the error do not fit in one dead-letter record */
  record: unknown
  dropped?: string
}

/** characters of the error kept: the record must still fit within the partition's record size limit */
const MAX_ERROR = 1000

type Ask = (address: string, method: string, args: unknown[]) => Promise<unknown>

export function isDeadLetterStream (stream: string): boolean {
  return stream.endsWith(DEAD_LETTER_SUFFIX)
}

/**
 * Appends `dead` (read under reset generation `gen`) to `<dead.stream>.dead` of `app`, once, and answers where it went, or undefined
 * for a record of a dead-letter stream itself (not dead-lettered again) or of an app whose
 * cells (`cells`, announced) have no dead-letter partition: one published before they
 * existed, until it is published again. Throws when the append fails (the pump pauses and
 * tries again, so nothing is skipped unrecorded).
 */
export async function deadLetterAppend (app: string, cells: readonly string[], dead: DeadLetter, gen: number, ask: Ask): Promise<{ stream: string, offset: number } | undefined> {
  const stream = deadLetterStream(dead.stream)
  const cell = partitionCell(stream, 0)
  if (isDeadLetterStream(dead.stream) || !cells.includes(cell)) return undefined
  const address = `${app}/${cell}`
  const entry: DeadLetter = { ...dead, error: dead.error.length > MAX_ERROR ? dead.error.slice(0, MAX_ERROR - 1) + '…' : dead.error }
  const from = [`${dead.stream}/${dead.partition}/${dead.group}`, gen, dead.offset]
  let answer: unknown
  try {
    answer = await ask(address, 'append', [entry, dead.key, from])
  } catch (err) {
    // 413: the record and the error together are over the partition's record size limit; the error and where the record is still go in
    if ((err as { cellError?: CellErrorInfo }).cellError?.status !== 413) throw err
    answer = await ask(address, 'append', [{ ...entry, record: null, dropped: 'the record is too large to be kept with its error' }, dead.key, from])
  }
  return { stream, offset: (answer as { offset: number }).offset }
}
