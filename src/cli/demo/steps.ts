// Small building blocks of the demo: poll a condition with a deadline, run the real CLI.
import { execFile } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import { STEM_BIN } from './cloud.js'

/** Polls `check` until it returns something other than undefined/false; throws `what` past the deadline. */
export async function poll<T> (check: () => Promise<T | undefined | false>, options: { timeout: number, what: string, signal?: AbortSignal, interval?: number }): Promise<T> {
  const deadline = Date.now() + options.timeout
  let last: unknown
  for (;;) {
    options.signal?.throwIfAborted()
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${Math.round(options.timeout / 1000)} s waiting for ${options.what}${last != null ? ` (last error: ${(last as Error).message.split('\n')[0]})` : ''}`)
    }
    await delay(options.interval ?? 250, undefined, { signal: options.signal })
  }
}

export interface CliRun { code: number, stdout: string, stderr: string }

/** Runs `stem ARGS…` as a child process, the way a user would. */
export async function runStem (args: string[], signal?: AbortSignal, timeout = 120_000): Promise<CliRun> {
  return await new Promise(resolve => {
    execFile(process.execPath, ['--no-node-snapshot', STEM_BIN, ...args], { env: { ...process.env, STEM_API: '' }, timeout, signal }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

/** `stem ARGS… --json`, parsed; a failure throws its one-line reason. */
export async function stemJson<T> (args: string[], signal?: AbortSignal): Promise<T> {
  const r = await runStem([...args, '--json'], signal)
  if (r.code !== 0) throw new Error(`\`stem ${args.join(' ')}\` failed: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`)
  return JSON.parse(r.stdout) as T
}
