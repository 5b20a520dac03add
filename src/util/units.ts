// Sizes and durations as people write them (manifest fields, CLI flags such as
// `--memory 2GiB`), parsed in this one place. Sizes: an integer or decimal number followed
// directly by a binary unit — B, KiB, MiB, GiB, TiB (powers of 1024). Decimal units (KB, MB,
// GB, TB) are refused with the binary spelling to use: "2GB" accepted as 1953125KiB
// surprised everyone. Durations: a number followed by ms, s, m or h. A bare number is
// refused: "32" could mean bytes or MiB, and a wrong guess is worse than an error.

const sizeUnits: Record<string, number> = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 }

/** decimal units people write, and the binary unit meant */
const decimalUnits: Record<string, string> = { KB: 'KiB', kB: 'KiB', MB: 'MiB', GB: 'GiB', TB: 'TiB' }

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

const quantity = /^(\d+(?:\.\d+)?)([A-Za-z]+)$/

function show (input: unknown): string {
  return typeof input === 'string' ? JSON.stringify(input) : String(input)
}

/** Bytes in a size such as `32MiB`, `1GiB`, `512KiB` (whole bytes, rounded down). */
export function parseSize (input: string): number {
  const match = typeof input === 'string' ? quantity.exec(input) : null
  const binary = match != null ? decimalUnits[match[2]] : undefined
  if (binary !== undefined) throw new Error(`${show(input)} is in decimal units: use binary units (MiB, GiB), e.g. ${(match as RegExpExecArray)[1]}${binary}`)
  const factor = match != null ? sizeUnits[match[2]] : undefined
  if (match == null || factor === undefined) throw new Error(`${show(input)} is not a size (use e.g. 32MiB)`)
  const bytes = Math.floor(Number(match[1]) * factor)
  if (!Number.isSafeInteger(bytes)) throw new Error(`${show(input)} is too large a size`)
  return bytes
}

/** Milliseconds in a duration such as `500ms`, `2s`, `1m`, `1.5h` (rounded to whole ms). */
export function parseDuration (input: string): number {
  const match = typeof input === 'string' ? quantity.exec(input) : null
  const factor = match != null ? durationUnits[match[2]] : undefined
  if (match == null || factor === undefined) throw new Error(`${show(input)} is not a duration (use e.g. 500ms, 2s, 1m)`)
  const ms = Math.round(Number(match[1]) * factor)
  if (!Number.isSafeInteger(ms)) throw new Error(`${show(input)} is too long a duration`)
  return ms
}

/** The shortest exact binary-unit spelling of a byte count: 33554432 → `32MiB`, 1500 → `1500B`. */
export function formatSize (bytes: number): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const factor = sizeUnits[unit]
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`
  }
  return `${bytes}B`
}

/** The shortest exact spelling of a duration in ms: 60000 → `1m`, 1500 → `1500ms`. */
export function formatDuration (ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const factor = durationUnits[unit]
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`
  }
  return `${ms}ms`
}
