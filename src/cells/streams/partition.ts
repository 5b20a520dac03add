// Stream partitions (SPEC §4 `stem.emit`, §5 `streams`): naming, the key → partition
// choice, and the consumer's cursor rule. Pure: shared by the isolate bootstrap (inlined
// as source), the gateway, the SDK and the node's delivery pump, so every producer picks
// the same partition for a key.

/** the method a partition's primary delivers records with (handled by the isolate bootstrap, never by cell code) */
export const RECORD_METHOD = 'stem:record'
/** the method the pump asks a consumer instance its cursor of one partition with, before it moves the partition to another instance (handled by the isolate bootstrap) */
export const CURSOR_METHOD = 'stem:cursor'
/** the consumer state's top-level field holding its cursors (a cell field of that name is refused) */
export const CURSORS_FIELD = 'stem:cursors'
/** first field of a partition cell's state: the node recognises partitions by it */
export const PARTITION_MARK = '{"stemStream":'

/** the suffix of a stream's dead-letter stream (`orders.dead`), which Stem declares and writes */
export const DEAD_LETTER_SUFFIX = '.dead'

/** The dead-letter stream of `stream`: records its consumers kept refusing, with the error. */
export function deadLetterStream (stream: string): string {
  return stream + DEAD_LETTER_SUFFIX
}

/**
 * The cell that holds partition `i` of `stream` (a name no manifest cell may take). A
 * dead-letter stream's `.` becomes `_`, a character cell addresses allow but stream and
 * cell names do not, so `orders.dead-p0` is `orders_dead-p0` and meets no other stream's
 * partition. Kept free of imports and closures: the isolate bootstrap inlines its source.
 */
export function partitionCell (stream: string, i: number): string {
  return `${stream.replace(/\.dead$/, '_dead')}-p${i}`
}

/** `APP/STREAM` (a dead-letter stream too: `shop/orders.dead`) → its app and stream; a one-line error for anything else */
export function parseStreamAddress (address: string): { app: string, stream: string } {
  const m = /^([^/#]+)\/([a-z0-9-]+(?:\.dead)?)$/.exec(address)
  if (m == null || !/^[a-z0-9][a-z0-9-]{0,62}$/i.test(m[1])) throw new Error(`invalid stream address ${JSON.stringify(address.slice(0, 100))}: expected APP/STREAM`)
  return { app: m[1], stream: m[2] }
}

/** The stream and partition a partition's cell holds (the inverse of partitionCell), or undefined for another cell. */
export function partitionOfCell (cell: string): { stream: string, partition: number } | undefined {
  const m = /^([a-z0-9-]+?)(_dead)?-p(\d+)$/.exec(cell)
  if (m == null) return undefined
  return { stream: m[2] === undefined ? m[1] : deadLetterStream(m[1]), partition: Number(m[3]) }
}

/**
 * The partition of `key` among `n` (FNV-1a over the UTF-16 units), or a random one without
 * a key. Kept free of imports and closures: the isolate bootstrap inlines its source.
 */
export function pickPartition (key: string | null | undefined, n: number): number {
  if (key === null || key === undefined) return Math.floor(Math.random() * n)
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619)
  return (h >>> 0) % n
}

/**
 * Whether a consumer whose cursor for a partition is `cursor` ([gen, offset] or undefined)
 * applies the record `offset` delivered under reset generation `gen`: a later generation
 * (a `--reset`) starts over, within one only offsets past the cursor apply. Kept free of
 * imports and closures: the isolate bootstrap inlines its source.
 */
export function cursorAccepts (cursor: readonly [number, number] | undefined, gen: number, offset: number): boolean {
  if (cursor === undefined) return true
  if (gen !== cursor[0]) return gen > cursor[0]
  return offset > cursor[1]
}
