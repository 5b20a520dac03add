// Cell addresses (SPEC §2, §4): `app/cell` (any replica), `app/cell#i` (replica i), and for
// keyed cells `app/cell/<key>`. Inside the mesh a keyed address also names the shard that
// serves its key (`app/cell#s/<key>`, see keys.ts), so the receiving node needs no table.
// A key is 1–256 bytes of UTF-8 without control characters; in an address it is
// percent-encoded where it holds `/`, `#` or `%` (other %XX escapes are decoded too).
const ADDRESS = /^([a-z0-9][a-z0-9_-]{0,62})\/([a-z0-9][a-z0-9_-]{0,62})(?:#(\d{1,6}))?(?:\/([^]*))?$/i
/** longest key, bytes of UTF-8 */
export const MAX_KEY_BYTES = 256
const CONTROL = /[\x00-\x1f\x7f]/
const utf8 = new TextDecoder('utf-8', { fatal: true })
/** no lone surrogate: the text is valid UTF-16, so UTF-8 */
const WELL_FORMED = /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/

export interface CellAddress {
  app: string
  cell: string
  replica?: number
  /** the key of a keyed cell's instance (decoded) */
  key?: string
}

export function parseAddress (address: string): CellAddress {
  const match = typeof address === 'string' && address.length <= 2048 ? ADDRESS.exec(address) : null
  if (match === null) throw new Error(`invalid cell address ${JSON.stringify(String(address).slice(0, 100))}: expected app/cell, app/cell#i or app/cell/<key>`)
  const parsed: CellAddress = { app: match[1], cell: match[2], replica: match[3] !== undefined ? Number(match[3]) : undefined }
  if (match[4] !== undefined) parsed.key = decodeKey(match[4])
  return parsed
}

/** The key of an address's `<key>` part; throws a one-line error naming what is wrong. */
export function decodeKey (encoded: string): string {
  if (encoded.length === 0) throw new Error('invalid key: it is empty (keys are 1–256 bytes)')
  if (encoded.includes('/') || encoded.includes('#')) throw new Error(`invalid key ${JSON.stringify(encoded.slice(0, 60))}: percent-encode '/' as %2F and '#' as %23`)
  if (/%(?![0-9a-f]{2})/i.test(encoded)) throw new Error(`invalid key ${JSON.stringify(encoded.slice(0, 60))}: '%' must start an escape %XX (write a '%' as %25)`)
  if (!WELL_FORMED.test(encoded)) throw new Error('invalid key: it holds a lone surrogate (not UTF-8)')
  const bytes = Buffer.concat(encoded.split(/(%[0-9a-f]{2})/i).map(part => /^%[0-9a-f]{2}$/i.test(part) ? Buffer.from([parseInt(part.slice(1), 16)]) : Buffer.from(part, 'utf8')))
  if (bytes.length > MAX_KEY_BYTES) throw new Error(`invalid key: longer than ${MAX_KEY_BYTES} bytes`)
  let key: string
  try {
    key = utf8.decode(bytes)
  } catch {
    throw new Error(`invalid key ${JSON.stringify(encoded.slice(0, 60))}: its escapes are not UTF-8`)
  }
  if (CONTROL.test(key)) throw new Error(`invalid key ${JSON.stringify(encoded.slice(0, 60))}: it holds a control character`)
  return key
}

/** A key as an address holds it: `%`, `/` and `#` escaped. Throws if the key is not a valid key. */
export function encodeKey (key: string): string {
  if (typeof key !== 'string' || key.length === 0) throw new Error('invalid key: it is empty (keys are 1–256 bytes)')
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new Error(`invalid key: longer than ${MAX_KEY_BYTES} bytes`)
  if (CONTROL.test(key)) throw new Error(`invalid key ${JSON.stringify(key.slice(0, 60))}: it holds a control character`)
  if (!WELL_FORMED.test(key)) throw new Error('invalid key: it holds a lone surrogate (not UTF-8)')
  return key.replace(/[%/#]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
}

/** `app/cell#i` of an instance address; a keyed address gives its shard's (or undefined without one). */
export function instanceAddress (address: string): string | undefined {
  const { app, cell, replica } = parseAddress(address)
  return replica === undefined ? undefined : `${app}/${cell}#${replica}`
}
