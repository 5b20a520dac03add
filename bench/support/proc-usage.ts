// CPU time and resident memory of a process from Linux's /proc (benches that measure whole
// processes: `bench idle`). CPU is utime + stime in seconds; RSS is VmRSS in bytes.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/** the fields of /proc/<pid>/stat after the command name: [0] is state (field 3 of proc(5)) */
function statFields (pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** user + system CPU seconds the process has used so far */
export function cpuSeconds (pid: number): number {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) / ticksPerSecond
}

/** resident set size in bytes */
export function rssBytes (pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/** the pids whose parent is `pid` */
export function childPids (pid: number): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (Number(statFields(Number(entry))[1]) === pid) out.push(Number(entry))
    } catch { /* the process exited while we looked */ }
  }
  return out
}
