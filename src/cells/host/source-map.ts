// Stacks of cell errors in the original sources: a bundle carries an inline source map
// (bundle-build.ts), and a stack's frames in the bundle's module (`<address>.js:line:col`)
// are mapped through it to `file.ts:line:col`. Frames outside the module (the isolate's
// bootstrap) are left out. Maps are parsed on the first error of a bundle and kept per
// bundle hash (a few, least recently used first out).
import { SourceMap } from 'node:module'

const INLINE = /\n\/\/# sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)\s*$/
const FRAME = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/
const MAX_MAPS = 16
const MAX_FRAMES = 20

const maps = new Map<string, SourceMap | null>()

function mapOf (hash: string, code: string): SourceMap | null {
  let map = maps.get(hash)
  if (map === undefined) {
    const m = INLINE.exec(code.slice(-Math.min(code.length, 4 * 1024 * 1024)))
    try {
      map = m === null ? null : new SourceMap(JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')))
    } catch {
      map = null
    }
    maps.set(hash, map)
    if (maps.size > MAX_MAPS) maps.delete(maps.keys().next().value as string)
  } else {
    // most recently used last
    maps.delete(hash)
    maps.set(hash, map)
  }
  return map
}

/**
 * The `at …` lines of `stack` that are in the cell's module (`filename`), mapped to the
 * original file:line:column where the bundle has a source map; '' if none are.
 */
export function mapStack (stack: string, filename: string, hash: string, code: string): string {
  const out: string[] = []
  for (const line of stack.split('\n')) {
    const m = FRAME.exec(line)
    if (m === null || m[2] !== filename) continue
    const fn = m[1]
    const lineNo = Number(m[3])
    const col = Number(m[4])
    const entry = mapOf(hash, code)?.findEntry(lineNo - 1, col - 1)
    const where = entry !== undefined && 'originalSource' in entry && entry.originalSource !== undefined
      ? `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`
      : `${filename}:${lineNo}:${col}`
    out.push(fn !== undefined && fn !== '' ? `at ${fn} (${where})` : `at ${where}`)
    if (out.length >= MAX_FRAMES) break
  }
  return out.join('\n')
}
