// Shared plumbing of the commands: errors with exit codes, the data dir, the API client.
import { totalmem } from 'node:os'
import { resolve } from 'node:path'
import { createApiClient, type ApiClient } from '../api/client.js'
import { defaultDataDir, readApiInfo, readToken } from '../node/data-dir.js'
import { formatSize, parseSize } from '../util/units.js'

/** An error the CLI reports as one line, exiting with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError'
  constructor (message: string, readonly exitCode = 1) { super(message) }
}

/** exit code for unusable input (bad flags, invalid invite token) */
export const EXIT_USAGE = 2

export interface ClientOptions {
  data?: string
  api?: string
  json?: boolean
}

export function dataDirOf (options: { data?: string }): string {
  return options.data != null ? resolve(options.data) : defaultDataDir()
}

/** --api / STEM_API (HOST:PORT or URL), else the URL the running node wrote to its data dir */
export async function apiUrl (options: ClientOptions): Promise<string> {
  const dir = dataDirOf(options)
  const given = options.api ?? process.env.STEM_API
  let url: string
  if (given != null && given !== '') {
    url = /^https?:\/\//.test(given) ? given : `http://${given}`
  } else {
    const info = await readApiInfo(dir)
    if (info == null) throw new CliError(`no running node found for data dir ${dir} (start one with \`stem start\`, or pass --data DIR / --api HOST:PORT)`)
    url = info.url
  }
  return url
}

export async function apiClient (options: ClientOptions): Promise<ApiClient> {
  return createApiClient(await apiUrl(options), await readToken(dataDirOf(options)))
}

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/** commander option parsers: one-line errors naming the flag */
export function sizeOption (flag: string): (value: string) => number {
  return value => {
    try { return parseSize(value) } catch (err) { throw new CliError(`${flag}: ${(err as Error).message}`, EXIT_USAGE) }
  }
}

/** --memory above this machine's memory would promise cells memory that is not there: refused unless --force */
export function checkMemory (flags: { memory?: number, force?: boolean }, machine = totalmem()): void {
  if (flags.memory === undefined || flags.memory <= machine || flags.force === true) return
  throw new CliError(`--memory ${formatSize(flags.memory)} is more than this machine's memory (${(machine / 2 ** 30).toFixed(1)}GiB); pass --force to contribute it anyway`, EXIT_USAGE)
}

export function numberOption (flag: string, integer: boolean): (value: string) => number {
  return value => {
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
      throw new CliError(`${flag}: expected ${integer ? 'a whole number' : 'a number'} ≥ 0, got "${value}"`, EXIT_USAGE)
    }
    return n
  }
}

export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** the one example each command's --help ends with: `.addHelpText('after', example('stem …'))` */
export function example (line: string): string {
  return `\nExample:\n  ${line}\n`
}
