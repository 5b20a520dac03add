// Real `stem` processes for multi-process tests: the helpers live with the scripts'
// support code, which `npm run chaos` and the benches share.
import { crashedStems, liveStems } from '../../scripts/support/stem-process.js'

export * from '../../scripts/support/stem-process.js'

/** For afterEach: after a failed test, the last lines each live or crashed node wrote (the why is usually there). */
export function printLogsIfFailed (this: Mocha.Context): void {
  if (this.currentTest?.state !== 'failed') return
  for (const p of liveStems()) {
    const tail = (p.stdout + p.stderr).trimEnd().split('\n').slice(-40).join('\n')
    process.stderr.write(`\n---- last output of the stem node in ${p.dataDir} ----\n${tail}\n`)
  }
  // a node that crashed says why in its last lines
  for (const p of crashedStems()) {
    const tail = (p.stdout + p.stderr).trimEnd().split('\n').slice(-40).join('\n')
    process.stderr.write(`\n---- the stem node in ${p.dataDir} exited with code ${String(p.exitCode)}; its last output ----\n${tail}\n`)
  }
}
