// The gateway over real HTTP against a real Fastify server, with cells played by an
// in-process backend double.
import assert from 'node:assert/strict'
import { CellResponse, createGateway, type Gateway, type GatewayInit } from '../../src/gateway/index.js'
import { waitFor } from '../support/wait.js'
import { FakeBackend, gate, getJson, postJson, rawRequest, recordingLogger, type LogLine } from './helpers.js'

describe('gateway: routes to cells over HTTP', () => {
  let backend: FakeBackend
  let gateway: Gateway
  let base: string
  let lines: LogLine[]

  async function startGateway (init: GatewayInit = {}): Promise<void> {
    const logger = recordingLogger()
    lines = logger.lines
    gateway = createGateway({ backend, logger }, { port: 0, ...init })
    await gateway.start()
    base = gateway.address()
  }

  beforeEach(async () => {
    backend = new FakeBackend()
    backend.cell('shop', 'counter', 'get', () => 7)
    backend.cell('shop', 'counter', 'increment', (arg: { body: { by: number } }) => 7 + arg.body.by)
    backend.cell('shop', 'items', 'get', (arg: unknown) => arg)
    await startGateway()
    gateway.setRoutes('shop', [
      { method: 'GET', path: '/count', cell: 'counter', cellMethod: 'get' },
      { method: 'POST', path: '/count', cell: 'counter', cellMethod: 'increment' },
      { method: 'GET', path: '/items/:id', cell: 'items', cellMethod: 'get', timeoutMs: 2000 }
    ])
  })

  afterEach(async () => {
    await gateway.stop()
  })

  it('calls the cell method with one { params, query, body } argument and returns its result as JSON 200', async () => {
    const res = await getJson(`${base}/shop/items/a%20b?color=red&tag=x&tag=y`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(res.json, { params: { id: 'a b' }, query: { color: 'red', tag: ['x', 'y'] }, body: null })
    const ask = backend.asks.at(-1)
    assert.ok(ask != null)
    assert.deepEqual(ask.target, { app: 'shop', cell: 'items', instance: 0 })
    assert.equal(ask.method, 'get')
    assert.equal(ask.args.length, 1)
  })

  it('passes a JSON body to the cell', async () => {
    const res = await postJson(`${base}/shop/count`, { by: 5 })
    assert.equal(res.status, 200)
    assert.equal(res.json, 12)
    assert.deepEqual((backend.asks.at(-1)?.args[0] as { body: unknown }).body, { by: 5 })
  })

  it('answers null for a method that returns nothing', async () => {
    backend.cell('shop', 'counter', 'get', () => undefined)
    const res = await getJson(`${base}/shop/count`)
    assert.equal(res.status, 200)
    assert.equal(res.json, null)
  })

  it('answers a cell error with 500 and its message', async () => {
    backend.cell('shop', 'counter', 'get', () => { throw new Error('counter exploded') })
    const res = await getJson(`${base}/shop/count`)
    assert.equal(res.status, 500)
    assert.deepEqual(res.json, { error: 'counter exploded' })
  })

  it('answers a cell error with the status of stem.error, its message, cell and method, never the stack', async () => {
    backend.cell('shop', 'items', 'get', () => {
      throw Object.assign(new Error('no order 99'), { cellError: { cell: 'shop/items#0', method: 'get', status: 404, stack: 'at Items.get (items.ts:3:11)' } })
    })
    const res = await getJson(`${base}/shop/items/99`)
    assert.equal(res.status, 404)
    assert.deepEqual(res.json, { error: 'no order 99', cell: 'shop/items#0', method: 'get' })
    // without a status: 500, still with cell and method; an out-of-range status is not used
    backend.cell('shop', 'items', 'get', () => {
      throw Object.assign(new Error('boom'), { cellError: { cell: 'shop/items#0', method: 'get', status: 200, stack: 'at x (items.ts:1:1)' } })
    })
    const plain = await getJson(`${base}/shop/items/1`)
    assert.equal(plain.status, 500)
    assert.deepEqual(plain.json, { error: 'boom', cell: 'shop/items#0', method: 'get' })
  })

  it('answers a stem.response with its status, headers and body', async () => {
    backend.cell('shop', 'counter', 'increment', () => new CellResponse(201, { location: '/shop/count/1', 'x-made-by': 'cell' }, { id: 1 }))
    const res = await postJson(`${base}/shop/count`, { by: 1 })
    assert.equal(res.status, 201)
    assert.equal(res.headers.get('location'), '/shop/count/1')
    assert.equal(res.headers.get('x-made-by'), 'cell')
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    assert.deepEqual(res.json, { id: 1 })
  })

  it('answers a result that is not JSON with 500', async () => {
    backend.cell('shop', 'counter', 'get', () => 10n)
    const res = await getJson(`${base}/shop/count`)
    assert.equal(res.status, 500)
    assert.match(res.json.error, /not JSON/)
  })

  it('answers 404 for an unknown path, app or method', async () => {
    for (const [method, path] of [['GET', '/shop/nope'], ['GET', '/other/count'], ['DELETE', '/shop/count'], ['GET', '/'], ['GET', '/_stem/nope']]) {
      const res = await getJson(`${base}${path}`, { method })
      assert.equal(res.status, 404, `${method} ${path}`)
      assert.match(res.json.error, /no route/)
    }
    assert.equal(backend.asks.length, 0)
  })

  it('answers HEAD with the GET route and no body', async () => {
    const res = await rawRequest(base, 'HEAD', '/shop/count')
    assert.equal(res.status, 200)
    assert.equal(res.body, '')
    assert.equal(backend.asks.at(-1)?.method, 'get')
  })

  it('echoes a sane x-request-id, replaces a bad one, and logs requests with it', async () => {
    const given = await getJson(`${base}/shop/count`, { headers: { 'x-request-id': 'req-42.a:b' } })
    assert.equal(given.headers.get('x-request-id'), 'req-42.a:b')
    const bad = await getJson(`${base}/shop/count`, { headers: { 'x-request-id': 'has spaces and <html>' } })
    assert.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
    const none = await getJson(`${base}/shop/nope`)
    assert.equal(none.status, 404)
    assert.match(none.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
    assert.ok(lines.some(l => l.bindings.reqId === 'req-42.a:b'), 'a log line carries the incoming request id')
  })

  it('keeps apps apart: the same route in two apps reaches each app\'s own cell', async () => {
    backend.cell('blog', 'counter', 'get', () => 'blog count')
    gateway.setRoutes('blog', [{ method: 'GET', path: '/count', cell: 'counter', cellMethod: 'get' }])
    assert.equal((await getJson(`${base}/shop/count`)).json, 7)
    assert.equal((await getJson(`${base}/blog/count`)).json, 'blog count')
  })

  it('updates routes live: replace, remove, and a refused update keeps the old routes', async () => {
    gateway.setRoutes('shop', [{ method: 'GET', path: '/total', cell: 'counter', cellMethod: 'get' }])
    assert.equal((await getJson(`${base}/shop/total`)).status, 200)
    assert.equal((await getJson(`${base}/shop/count`)).status, 404)

    assert.throws(() => {
      gateway.setRoutes('shop', [
        { method: 'GET', path: '/a/:x', cell: 'counter', cellMethod: 'get' },
        { method: 'GET', path: '/a/:y', cell: 'counter', cellMethod: 'get' }
      ])
    }, /clashes/)
    assert.equal((await getJson(`${base}/shop/total`)).status, 200, 'old routes still served')
    assert.equal((await getJson(`${base}/shop/a/1`)).status, 404)

    assert.equal(gateway.removeApp('shop'), true)
    assert.equal(gateway.removeApp('shop'), false)
    assert.equal((await getJson(`${base}/shop/total`)).status, 404)
  })

  it('serves /_stem/health and the live table at /_stem/routes', async () => {
    const health = await getJson(`${base}/_stem/health`)
    assert.equal(health.status, 200)
    assert.deepEqual(health.json, { status: 'ok', apps: 1, routes: 3, inFlight: 0 })
    const routes = await getJson(`${base}/_stem/routes`)
    assert.equal(routes.status, 200)
    assert.deepEqual(routes.json.routes, [
      { app: 'shop', method: 'GET', path: '/shop/count', cell: 'counter', cellMethod: 'get', timeoutMs: 10000 },
      { app: 'shop', method: 'POST', path: '/shop/count', cell: 'counter', cellMethod: 'increment', timeoutMs: 10000 },
      { app: 'shop', method: 'GET', path: '/shop/items/:id', cell: 'items', cellMethod: 'get', timeoutMs: 2000 }
    ])
  })

  it('answers many concurrent requests and settles back to nothing in flight', async () => {
    backend.setReplicas('shop', 'items', 4)
    backend.cell('shop', 'items', 'get', async (arg: { params: { id: string } }) => await Promise.resolve(Number(arg.params.id) * 2))
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await getJson(`${base}/shop/items/${i}`)))
    results.forEach((res, i) => {
      assert.equal(res.status, 200)
      assert.equal(res.json, i * 2)
    })
    assert.equal(gateway.inFlight, 0)
    assert.deepEqual((await getJson(`${base}/_stem/health`)).json.inFlight, 0)
  })

  it('refuses bad options with a one-line error', () => {
    assert.throws(() => createGateway({ backend }, { bodyLimit: -1 }), /option bodyLimit must be a whole number of at least 1, got -1/)
    assert.throws(() => createGateway({ backend }, { maxInFlight: 0 }), /maxInFlight/)
    assert.throws(() => createGateway({ backend }, { port: 70000 }), /port must be 0-65535/)
    assert.throws(() => createGateway({ backend }, { maxRetries: 1.5 }), /maxRetries/)
    assert.throws(() => createGateway({ backend }, { defaultTimeoutMs: 1e9 }), /defaultTimeoutMs must be at most/)
  })

  it('reports a port it cannot bind as a one-line error', async () => {
    const port = Number(new URL(base).port)
    const other = createGateway({ backend }, { port })
    await assert.rejects(other.start(), /gateway cannot listen on 127.0.0.1:\d+: .*EADDRINUSE/)
  })

  it('spreads requests over a cell\'s replicas and prefers the least busy one', async () => {
    backend.setReplicas('shop', 'counter', 3)
    for (let i = 0; i < 6; i++) assert.equal((await getJson(`${base}/shop/count`)).status, 200)
    const used = backend.asks.map(a => a.target.instance)
    assert.deepEqual([...new Set(used)].sort(), [0, 1, 2])
    for (const i of [0, 1, 2]) assert.equal(used.filter(u => u === i).length, 2, `replica ${i} served its share`)

    // hold one request on whichever replica it lands; the next ones avoid that replica
    const held = gate<number>()
    let heldInstance: number | undefined
    backend.cell('shop', 'counter', 'get', (_arg, call) => {
      if (heldInstance === undefined) {
        heldInstance = call.target.instance
        return held.promise
      }
      return call.target.instance
    })
    const slow = getJson(`${base}/shop/count`)
    await waitFor(() => heldInstance !== undefined, { what: 'the first request to reach a replica' })
    const others = await Promise.all([getJson(`${base}/shop/count`), getJson(`${base}/shop/count`)])
    for (const res of others) assert.notEqual(res.json, heldInstance)
    held.open(99)
    assert.equal((await slow).json, 99)
  })

  it('answers requests still waiting on a cell with 503 when it stops, and can start again', async () => {
    const never = gate()
    backend.cell('shop', 'counter', 'get', () => never.promise)
    const pending = getJson(`${base}/shop/count`)
    await waitFor(() => gateway.inFlight === 1, { what: 'the request to be in flight' })
    await gateway.stop()
    const res = await pending
    assert.equal(res.status, 503)
    assert.match(res.json.error, /stopping/)
    await assert.rejects(fetch(`${base}/shop/count`), 'nothing listens once stopped')

    // it starts again with its routes (on a new ephemeral port)
    backend.cell('shop', 'counter', 'get', () => 'back')
    await gateway.start()
    base = gateway.address()
    assert.equal((await getJson(`${base}/shop/count`)).json, 'back')
  })
})
