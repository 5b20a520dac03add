import type { Entry } from '../types.js'

/** Approximate encoded size of an entry: its data plus a small fixed header. */
export function entrySize (e: Entry): number {
  return e.data.byteLength + 16
}

/** The longest prefix of `ents` within `maxBytes` (always at least one entry). */
export function limitSize (ents: Entry[], maxBytes?: number): Entry[] {
  if (maxBytes === undefined || ents.length <= 1) return ents
  let size = entrySize(ents[0])
  let n = 1
  while (n < ents.length) {
    size += entrySize(ents[n])
    if (size > maxBytes) break
    n++
  }
  return n === ents.length ? ents : ents.slice(0, n)
}
