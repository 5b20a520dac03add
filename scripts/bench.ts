// `npm run bench`: runs every benchmark in dist/bench, each in its own process (a bench
// that crashes or hangs cannot take the others down). Each bench prints its own
// `bench <name>: <figure> (<baseline figure>, ratio <r>)` lines; this runner passes them
// through and reports a bench that failed as such.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench')
const only = process.argv.slice(2).filter(a => !a.startsWith('-'))
const files = readdirSync(benchDir)
  .filter(f => f.endsWith('.js'))
  .filter(f => only.length === 0 || only.some(o => f.startsWith(o)))
  .sort()

const perBenchTimeoutMs = 10 * 60 * 1000
let failed = 0

for (const file of files) {
  const code = await new Promise<number>(resolve => {
    const child = spawn(process.execPath, ['--no-node-snapshot', join(benchDir, file)], { stdio: 'inherit' })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, perBenchTimeoutMs)
    child.on('exit', (c, signal) => { clearTimeout(timer); resolve(c ?? (signal != null ? 1 : 0)) })
  })
  if (code !== 0) {
    failed++
    console.log(`bench ${file.replace(/\.js$/, '')}: failed (exit ${code})`)
  }
}
process.exitCode = failed > 0 ? 1 : 0
