// Byte sizes as users write them: 512MiB, 2GiB, 1.5GB, 1048576.
const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40
}

/** Parses a size to bytes; throws a one-line error naming the input. */
export function parseSize (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text)
  const unit = m != null ? UNITS[m[2].toLowerCase()] : undefined
  if (m == null || unit == null) throw new Error(`invalid size "${text}": use e.g. 512MiB, 2GiB or a number of bytes`)
  const bytes = Math.round(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid size "${text}": too large`)
  return bytes
}

/** The largest binary unit that divides the size exactly: 2147483648 → "2GiB". */
export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1 && Number.isInteger(v / 1024)) { v /= 1024; i++ }
  return `${v}${units[i]}`
}
