// bench cli-call: what one `stem call` costs a user at the shell, start-up included.
// One `stem start` process hosts examples/counter; each sample is a fresh process, as a
// user types it: `stem call counter/counter get` (bin/stem.js on this Node, through the
// node's control API) beside `curl` of GET /counter/count on the same node's gateway (the
// same cell method), alternating, after a warm-up of both. p50 of the wall times.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { waitFor } from '../test/support/wait.js'
import { repoRoot, spawnStem, stem, stopAll, tempDataDir } from '../test/support/stem-process.js'
import { percentile } from './support/stats.js'

const run = promisify(execFile)
const samples = 15
const manifest = join(repoRoot, 'examples', 'counter', 'app.yaml')
const stemBin = join(repoRoot, 'bin', 'stem.js')

async function wallMs (file: string, args: string[], check: (stdout: string) => boolean): Promise<number> {
  const t = performance.now()
  const { stdout } = await run(file, args, { env: { ...process.env, STEM_API: '' } })
  const ms = performance.now() - t
  if (!check(stdout)) throw new Error(`${file} ${args.join(' ')}: unexpected output ${stdout}`)
  return ms
}

try {
  const node = await spawnStem(['start'], await tempDataDir(), ['--gateway', '127.0.0.1:0']).ready()
  const gateway = /^gateway: (\S+)$/m.exec(node.stdout)?.[1]
  if (gateway === undefined) throw new Error('the node printed no gateway URL')
  const published = await stem(['publish', manifest, '--data', node.dataDir])
  if (published.code !== 0) throw new Error(`publish failed: ${published.stderr}`)
  const url = `${gateway}/counter/count`
  await waitFor(async () => (await fetch(url)).status === 200, { timeout: 30_000, what: `${url} to answer` })

  const counted = (stdout: string): boolean => typeof (JSON.parse(stdout) as { count?: unknown }).count === 'number'
  const cli = async (): Promise<number> => await wallMs(process.execPath, ['--no-node-snapshot', stemBin, 'call', 'counter/counter', 'get', '--data', node.dataDir], counted)
  const curl = async (): Promise<number> => await wallMs('curl', ['-sf', url], counted)
  await cli()
  await curl()
  const times: { cli: number[], curl: number[] } = { cli: [], curl: [] }
  for (let i = 0; i < samples; i++) {
    times.cli.push(await cli())
    times.curl.push(await curl())
  }
  const c = percentile(times.cli, 0.5)
  const h = percentile(times.curl, 0.5)
  console.error(`cli-call bench: ${samples} alternating runs each of \`stem call counter/counter get\` (a fresh Node process via bin/stem.js, control API) and \`curl ${url}\` (same node, same cell method); p50 wall time`)
  console.log(`bench cli-call: stem call p50 ${Math.round(c)} ms (curl to the gateway p50 ${Math.round(h)} ms, ratio ${(c / h).toFixed(1)})`)
} finally {
  await stopAll()
}
