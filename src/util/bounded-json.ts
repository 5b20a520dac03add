// JSON from outside (HTTP bodies, control API requests, CLI arguments, what a cell's
// isolate hands its host) is parsed only within a size and a nesting-depth bound: a deeply
// nested value parses fine but overflows the stack of every recursive walk after it
// (validation, prototype-poisoning scans, JSON.stringify), a 500 instead of a 400.

/** deepest nesting of arrays/objects accepted anywhere */
export const MAX_JSON_DEPTH = 1000

export interface JsonBounds {
  /** largest text, characters (default: no size bound) */
  maxBytes?: number
  /** deepest nesting of arrays and objects (default MAX_JSON_DEPTH) */
  maxDepth?: number
}

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * The nesting depth of JSON text, counted without parsing (brackets inside strings do not
 * count); stops counting once past `limit`. Valid or not, it never throws.
 */
export function jsonDepth (text: string, limit = Infinity): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        max = depth
        if (max > limit) return max
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return max
}

/** Why `text` is outside the bounds (a one-line reason naming `what`), or undefined. */
export function jsonBoundsError (text: string, what: string, bounds: JsonBounds = {}): string | undefined {
  const maxDepth = bounds.maxDepth ?? MAX_JSON_DEPTH
  if (bounds.maxBytes !== undefined && text.length > bounds.maxBytes) return `${what} is too large: ${text.length} characters of JSON, limit ${bounds.maxBytes}`
  // fewer characters than the limit cannot nest deeper than it: short texts skip the scan
  if (text.length > maxDepth && jsonDepth(text, maxDepth) > maxDepth) return `${what} is nested too deeply: more than ${maxDepth} levels`
  return undefined
}

/** JSON.parse within the bounds; throws one line naming `what` and what is wrong. */
export function parseBoundedJson (text: string, what: string, bounds: JsonBounds = {}): unknown {
  const reason = jsonBoundsError(text, what, bounds)
  if (reason !== undefined) throw new Error(reason)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message.split('\n')[0]}`)
  }
}
