// `systemctl [--user] …` for `stem service`; never called with --unit-dir (tests).
import { execFile } from 'node:child_process'

export interface SystemctlResult { code: number, stdout: string, stderr: string }

const TIMEOUT_MS = 60_000

/** Runs systemctl; resolves with its exit code and output, rejects only when it cannot run. */
export async function systemctl (user: boolean, args: string[], signal?: AbortSignal): Promise<SystemctlResult> {
  return await new Promise((resolve, reject) => {
    execFile('systemctl', [...(user ? ['--user'] : []), ...args], { timeout: TIMEOUT_MS, signal }, (err, stdout, stderr) => {
      const code = err == null ? 0 : (err as { code?: unknown }).code
      if (typeof code !== 'number') { reject(new Error(`cannot run systemctl: ${err?.message ?? 'unknown error'}`)); return }
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() })
    })
  })
}

/** Runs systemctl and fails with its first line of complaint when it exits non-zero. */
export async function systemctlOrFail (user: boolean, args: string[], signal?: AbortSignal): Promise<void> {
  const r = await systemctl(user, args, signal)
  if (r.code !== 0) throw new Error(`systemctl${user ? ' --user' : ''} ${args.join(' ')} failed: ${(r.stderr || r.stdout).split('\n')[0] || `exit ${r.code}`}`)
}
