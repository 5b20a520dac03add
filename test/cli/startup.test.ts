// A CLI call that only talks to a node's HTTP API starts without loading the node: no
// libp2p, isolated-vm or esbuild in its module graph (they made each call cost about a
// second). A module hook records every module the command resolves, against a small
// HTTP server standing in for the node's API.
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runToEnd } from '../support/stem-process.js'
import { stemBin } from '../support/demo-process.js'

/** packages only a running node needs */
const HEAVY = /\/node_modules\/(libp2p|@libp2p\/[^/]+|isolated-vm|esbuild|@chainsafe\/libp2p[^/]*|fastify)\//

const HOOK = `import { registerHooks } from 'node:module'
import { writeFileSync } from 'node:fs'
const seen = new Set()
registerHooks({ resolve (spec, ctx, next) { const r = next(spec, ctx); seen.add(r.url); return r } })
process.on('exit', () => { writeFileSync(process.env.STEM_TEST_MODULES, JSON.stringify([...seen])) })
`

describe('cli: start-up of API-only commands', function () {
  this.timeout(60_000)
  let dir: string
  let server: Server
  let api: string
  let asked = 0

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-startup-'))
    await writeFile(join(dir, 'hook.mjs'), HOOK)
    await writeFile(join(dir, 'api-token'), 'test-token\n', { mode: 0o600 })
    // answers every request with an empty JSON list: the commands print little or fail on the shape, after loading
    server = createServer((_req, res) => { asked++; res.writeHead(200, { 'content-type': 'application/json' }); res.end('[]') })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const address = server.address() as { port: number }
    api = `127.0.0.1:${address.port}`
  })

  after(async () => {
    server.close()
    await rm(dir, { recursive: true, force: true })
  })

  const commands = [['status'], ['peers'], ['apps'], ['cells'], ['call', 'counter/counter', 'get'], ['logs', 'counter'], ['invite'], ['contribute', '--cells', '3']]
  for (const args of commands) {
    it(`stem ${args.join(' ')} loads no libp2p, isolated-vm or esbuild`, async () => {
      const list = join(dir, `modules-${args[0]}.json`)
      const before = asked
      const r = await runToEnd(process.execPath, ['--no-node-snapshot', '--import', join(dir, 'hook.mjs'), stemBin, ...args, '--api', api, '--data', dir],
        { env: { ...process.env, STEM_API: '', STEM_TEST_MODULES: list } })
      const modules = JSON.parse(await readFile(list, 'utf8')) as string[]
      // the command ran its action (it asked the API), not just parsed its flags
      assert.ok(asked > before, `stem ${args.join(' ')} did not ask the API: ${r.stderr}`)
      const heavy = modules.filter(m => HEAVY.test(m))
      assert.deepEqual(heavy.slice(0, 5), [], `stem ${args.join(' ')} loaded ${heavy.length} modules of a node`)
    })
  }

  it('stem start still loads the node (the hook sees heavy modules when they load)', async () => {
    const list = join(dir, 'modules-start.json')
    // an unusable --memory makes start fail after its action began; the node module is imported by then or not at all
    await runToEnd(process.execPath, ['--no-node-snapshot', '--import', join(dir, 'hook.mjs'), stemBin, 'start', '--data', join(dir, 'node'), '--listen', 'not-a-multiaddr', '--api', '127.0.0.1:0'],
      { env: { ...process.env, STEM_API: '', STEM_TEST_MODULES: list } })
    const modules = JSON.parse(await readFile(list, 'utf8')) as string[]
    assert.ok(modules.some(m => HEAVY.test(m)), 'stem start loaded no libp2p: the check above could not fail')
  })
})
