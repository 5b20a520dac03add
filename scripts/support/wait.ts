// Waiting for conditions with deadlines, never for fixed sleeps (tests, chaos, benches).
import { setTimeout as delay } from 'node:timers/promises'

export interface WaitOptions {
  /** give up after this long (ms); default 20 s, generous for a loaded 2-core machine */
  timeout?: number
  /** poll interval (ms) */
  interval?: number
  /** what is being waited for, for the error message */
  what?: string
}

/** Polls `check` until it returns a value other than undefined/false, or the deadline passes. */
export async function waitFor<T> (check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeout ?? 20_000)
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const why = lastError != null ? ` (last error: ${(lastError as Error).message})` : ''
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${why}`)
    }
    await delay(options.interval ?? 50)
  }
}
