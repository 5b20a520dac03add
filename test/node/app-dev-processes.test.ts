// Writing an app for Stem (issue 19), end to end with real `stem` processes: publish refuses
// a route to a missing method and a syntax error with file:line:column; cells answer HTTP
// with stem.error / stem.response; a thrown error reaches HTTP callers as message + cell +
// method (no stack) and `stem call` with the stack in the original .ts file; `stem logs`
// gathers stem.log lines and errors from the node running the cell (the gateway node runs
// no cells), in time order, follows new ones, and the dashboard shows them.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CellLogLine } from '../../src/node/cell-logs.js'
import { waitFor } from '../support/wait.js'
import { apiUrlOf, repoRoot, spawnStem, stem, stemJson, printLogsIfFailed, stopAll, tempDataDir } from '../support/stem-process.js'

const ORDERS_TS = `interface Order { id: number, title: string }

export default class Orders {
  orders: Order[] = []

  add (req: { body: { title: string } }) {
    const order = { id: this.orders.length + 1, title: req.body.title }
    this.orders.push(order)
    stem.log('added order', order.id)
    return stem.response(201, order, { location: '/orders/orders/' + order.id })
  }

  get (req: { params: { id: string } }) {
    const found = this.orders.find(o => o.id === Number(req.params.id))
    if (found === undefined) throw stem.error(404, 'no order ' + req.params.id)
    return found
  }

  broken () {
    const nothing: any = undefined
    nothing.title = 'x'
  }
}
`
const MANIFEST = (routes: string[]): string => `app: orders
cells:
  orders:
    code: ./orders.ts
routes:
${routes.map(r => `  - ${r}`).join('\n')}
`
const ROUTES = ['POST /orders -> orders.add', 'GET /orders/:id -> orders.get', 'GET /broken -> orders.broken']

describe('writing an app: errors, HTTP answers, route checks and logs on real stem processes', function () {
  this.timeout(300_000)
  let appDir = ''
  afterEach(printLogsIfFailed)
  after(async () => {
    await stopAll()
    if (appDir !== '') await rm(appDir, { recursive: true, force: true })
  })

  it('publish checks → stem.response/stem.error over the gateway → stacks in stem call → stem logs from the other node', async () => {
    appDir = await mkdtemp(join(tmpdir(), 'stem-app-'))
    // the gateway node contributes no cell slots: the cell runs on the other node
    const front = await spawnStem(['start'], await tempDataDir(), ['--gateway', '127.0.0.1:0', '--cells', '0']).ready()
    const invite = await stem(['invite', '--data', front.dataDir])
    assert.equal(invite.code, 0, invite.stderr)
    const back = await spawnStem(['join', invite.stdout.trim()], await tempDataDir()).ready()
    await waitFor(async () => (await stemJson<{ peers: unknown[] }>(['peers', '--data', front.dataDir])).peers.length === 1, { timeout: 60_000, what: 'the nodes to see each other' })

    // a route to a method the class does not have: exit 2, naming the route and the method
    await writeFile(join(appDir, 'orders.ts'), ORDERS_TS)
    await writeFile(join(appDir, 'app.yaml'), MANIFEST([...ROUTES, 'GET /archive -> orders.archive']))
    const badRoute = await stem(['publish', join(appDir, 'app.yaml'), '--data', front.dataDir])
    assert.equal(badRoute.code, 2, badRoute.stderr)
    assert.match(badRoute.stderr, /routes\[3\] "GET \/archive -> orders\.archive": class Orders of orders \(\.\/orders\.ts\) has no public method "archive" \(it has: add, broken, get\)/)
    assert.deepEqual(await stemJson<unknown[]>(['apps', '--data', front.dataDir]), [], 'nothing was published')

    // a syntax error: file:line:column, then the source line
    await writeFile(join(appDir, 'orders.ts'), ORDERS_TS.replace('return found', 'return (found'))
    await writeFile(join(appDir, 'app.yaml'), MANIFEST(ROUTES))
    const badSyntax = await stem(['publish', join(appDir, 'app.yaml'), '--data', front.dataDir])
    assert.equal(badSyntax.code, 1, badSyntax.stderr)
    assert.match(badSyntax.stderr, /^stem: cannot bundle orders\/orders: \S*orders\.ts:17:3: Expected "\)" but found "}"\n {4}17 \| {3}}\n/m)

    await writeFile(join(appDir, 'orders.ts'), ORDERS_TS)
    const published = await stem(['publish', join(appDir, 'app.yaml'), '--data', front.dataDir])
    assert.equal(published.code, 0, published.stderr)
    const cells = await stemJson<Array<{ cells: Array<{ node: string }> }>>(['cells', 'orders', '--data', front.dataDir])
    assert.equal(cells[0].cells[0].node, back.peerId())

    const gateway = /^gateway: (\S+)$/m.exec(front.stdout)?.[1] as string
    const created = await waitFor(async () => {
      const res = await fetch(`${gateway}/orders/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'tea' }) })
      return res.status !== 503 && res
    }, { what: 'the gateway route' })
    assert.equal(created.status, 201)
    assert.equal(created.headers.get('location'), '/orders/orders/1')
    assert.deepEqual(await created.json(), { id: 1, title: 'tea' })

    const missing = await fetch(`${gateway}/orders/orders/99`)
    assert.equal(missing.status, 404)
    assert.deepEqual(await missing.json(), { error: 'no order 99', cell: 'orders/orders#0', method: 'get' })

    const broken = await fetch(`${gateway}/orders/broken`)
    assert.equal(broken.status, 500)
    assert.deepEqual(await broken.json(), { error: "Cannot set properties of undefined (setting 'title')", cell: 'orders/orders#0', method: 'broken' })

    // stem call shows where, and the stack in the original file
    const call = await stem(['call', 'orders/orders', 'broken', '--data', front.dataDir])
    assert.equal(call.code, 1)
    assert.match(call.stderr, /^stem: Cannot set properties of undefined \(setting 'title'\) \(orders\/orders#0\.broken\)\n {4}at Orders\.broken \(orders\.ts:21:\d+\)\n/)

    // stem logs on the node that runs nothing: the lines come from the other node, in order
    const logs = await waitFor(async () => {
      const r = await stem(['logs', 'orders', '--json', '--data', front.dataDir])
      assert.equal(r.code, 0, r.stderr)
      const lines = r.stdout.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as CellLogLine)
      return lines.filter(l => l.kind === 'error').length >= 2 && lines
    }, { what: 'the log lines of both errors' })
    const [added, ...errors] = logs
    assert.equal(added.kind, 'log')
    assert.equal(added.text, 'added order 1')
    assert.equal(added.address, 'orders/orders#0')
    assert.equal(added.node, back.peerId())
    assert.match(added.revision, /^[0-9a-f]{64}:/)
    assert.deepEqual(errors.map(e => [e.kind, e.method, e.text]), [['error', 'broken', "Cannot set properties of undefined (setting 'title')"], ['error', 'broken', "Cannot set properties of undefined (setting 'title')"]])
    assert.match(errors[0].stack ?? '', /^at Orders\.broken \(orders\.ts:21:\d+\)/)
    assert.ok(logs.every((l, i) => i === 0 || logs[i - 1].ts <= l.ts), 'time order')
    // the 404 is an answer the cell chose, not an error of the log
    assert.ok(!logs.some(l => l.method === 'get'))

    // the text form: one line each, the stack indented below an error; the node's own file and log
    const text = await stem(['logs', 'orders/orders', '--data', front.dataDir])
    assert.match(text.stdout, /^\S+Z 12D3…\S{6} orders\/orders#0 rev [0-9a-f]{8} log: added order 1$/m)
    assert.match(text.stdout, /error in broken: Cannot set properties of undefined \(setting 'title'\)\n {4}at Orders\.broken \(orders\.ts:21:\d+\)/)
    assert.match(await readFile(join(back.dataDir, 'cell-logs.jsonl'), 'utf8'), /"text":"added order 1"/)
    assert.match(back.stderr, /orders\/orders#0 \(rev [0-9a-f]{8}\) log: added order 1/)
    assert.equal((await stem(['logs', 'orders/nope', '--data', front.dataDir])).stdout, '')
    const badTarget = await stem(['logs', 'orders/bad name', '--data', front.dataDir])
    assert.equal(badTarget.code, 2)
    assert.match(badTarget.stderr, /invalid app or cell "orders\/bad name"/)
    const badSince = await stem(['logs', 'orders', '--since', '10', '--data', front.dataDir])
    assert.equal(badSince.code, 2)
    assert.match(badSince.stderr, /--since: "10" is not a duration/)

    // --follow prints lines written after it started
    const follow = spawn(process.execPath, ['--no-node-snapshot', join(repoRoot, 'bin', 'stem.js'), 'logs', 'orders', '--follow', '--since', '1h', '--data', front.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let followed = ''
    follow.stdout.on('data', (d: Buffer) => { followed += d.toString() })
    try {
      await waitFor(() => followed.includes('log: added order 1'), { what: 'stem logs --follow to print the lines so far' })
      await fetch(`${gateway}/orders/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'milk' }) })
      await waitFor(() => followed.includes('log: added order 2'), { what: 'stem logs --follow to print the new line' })
    } finally {
      follow.kill()
    }
    assert.equal(followed.match(/added order [12]/g)?.length, 2, 'each line once')

    // the dashboard's log of the cell (public, like the dashboard)
    const dashboard = await (await fetch(`${await apiUrlOf(front.dataDir)}/dashboard/logs?cell=${encodeURIComponent('orders/orders#0')}`)).json() as Array<{ kind: string, text: string, node: string }>
    assert.ok(dashboard.some(l => l.kind === 'log' && l.text === 'added order 2' && l.node === back.peerId()), JSON.stringify(dashboard))
    assert.ok(dashboard.some(l => l.kind === 'error' && /orders\.ts:21/.test(l.text)))
  })
})
