// Small display helpers of the dashboard page.

/** the end of a peer id, which is where ids differ: `12D3KooW…` → `…a1b2c3` */
export function shortId (id: string): string {
  return id.length > 10 ? '…' + id.slice(-6) : id
}

/** shortens every peer id written in a line of text */
export function shortenIds (text: string): string {
  return text.replace(/\b(?:12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{30,}\b/g, shortId)
}

export function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`
}

export function cores (n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1)
}

export function clock (at: number): string {
  return new Date(at).toLocaleTimeString([], { hour12: false })
}

export function ago (at: number, now: number): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  return `${Math.floor(s / 3600)}h ago`
}

export function rate (perSecond: number): string {
  if (perSecond === 0) return '0'
  if (perSecond < 10) return perSecond.toFixed(1)
  return String(Math.round(perSecond))
}

const palette = ['#4f8df7', '#e5793b', '#2fb37e', '#b36be0', '#d9b21e', '#e0527a', '#30b5c8', '#8f9a3a']

/** a stable colour per app name */
export function appColor (app: string): string {
  let h = 0
  for (let i = 0; i < app.length; i++) h = (h * 31 + app.charCodeAt(i)) >>> 0
  return palette[h % palette.length]
}
