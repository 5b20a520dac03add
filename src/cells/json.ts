// Arguments, results and state are JSON-like values (SPEC §4). The node side checks
// values it is handed strictly, so a non-JSON value is a clear error to the caller
// instead of being silently changed by JSON.stringify.

import { types } from 'node:util'

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** Throws "<what> is not JSON-like: <reason> at <path>" for anything JSON cannot carry exactly. */
export function assertJsonValue (value: unknown, what: string): asserts value is JsonValue {
  const seen = new Set<object>()
  const walk = (v: unknown, path: string): void => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error(`${what} is not JSON-like: ${String(v)} at ${path}`)
      return
    }
    if (typeof v !== 'object') throw new Error(`${what} is not JSON-like: ${typeof v} at ${path}`)
    if (types.isProxy(v)) throw new Error(`${what} is not JSON-like: proxy at ${path}`)
    if (seen.has(v)) throw new Error(`${what} is not JSON-like: cyclic reference at ${path}`)
    seen.add(v)
    if (Array.isArray(v)) {
      v.forEach((item, i) => { walk(item, `${path}[${i}]`) })
    } else {
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) throw new Error(`${what} is not JSON-like: ${proto?.constructor?.name ?? 'object'} at ${path}`)
      for (const key of Object.keys(v)) {
        const desc = Object.getOwnPropertyDescriptor(v, key)
        if (desc?.get != null || desc?.set != null) throw new Error(`${what} is not JSON-like: accessor property at ${path}.${key}`)
        walk(desc?.value, `${path}.${key}`)
      }
    }
    seen.delete(v)
  }
  walk(value, '$')
}

/** JSON text of a strictly checked JSON-like value, refused above `maxBytes`. */
export function toJsonText (value: unknown, what: string, maxBytes: number): string {
  assertJsonValue(value, what)
  const text = JSON.stringify(value)
  if (text.length > maxBytes) throw new Error(`${what} is too large: ${text.length} characters of JSON, limit ${maxBytes}`)
  return text
}
