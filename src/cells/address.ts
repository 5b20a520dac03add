// Cell addresses (SPEC §2): `app/cell` (any replica) or `app/cell#i` (replica i).
const ADDRESS = /^([a-z0-9][a-z0-9_-]{0,62})\/([a-z0-9][a-z0-9_-]{0,62})(?:#(\d{1,6}))?$/i

export interface CellAddress {
  app: string
  cell: string
  replica?: number
}

export function parseAddress (address: string): CellAddress {
  const match = typeof address === 'string' ? ADDRESS.exec(address) : null
  if (match === null) throw new Error(`invalid cell address ${JSON.stringify(String(address).slice(0, 100))}: expected app/cell or app/cell#i`)
  return { app: match[1], cell: match[2], replica: match[3] !== undefined ? Number(match[3]) : undefined }
}
