// Checks a request's raw path before routing: no dot segments (plain or percent-encoded),
// no empty segments (double slashes), no encoded separators or control characters. Such
// paths are refused (400) rather than normalised, so no spelling of a path can reach a
// route other than the one it names.

/** Returns the reason the path is refused, or undefined when it is acceptable. */
export function checkRequestPath (path: string): string | undefined {
  if (!path.startsWith('/')) return 'path must start with /'
  if (path.includes('\\')) return 'path contains a backslash'
  const segments = path.slice(1).split('/')
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]
    if (raw === '') {
      if (i === segments.length - 1) continue // a trailing slash
      return 'path has an empty segment (double slash)'
    }
    let segment: string
    try {
      segment = decodeURIComponent(raw)
    } catch {
      return 'path has invalid percent-encoding'
    }
    if (segment === '.' || segment === '..') return 'path has a dot segment'
    if (/[/\\\p{Cc}]/u.test(segment)) return 'path has an encoded separator or control character'
  }
  return undefined
}

/** The path part of a request target (`/a/b?x=1` → `/a/b`). */
export function pathOf (url: string): string {
  const q = url.indexOf('?')
  const h = url.indexOf('#')
  const end = Math.min(q === -1 ? url.length : q, h === -1 ? url.length : h)
  return url.slice(0, end)
}
