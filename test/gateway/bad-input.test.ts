// Hostile and broken input over real HTTP: bad bodies, path tricks, slow clients, cells
// that throw, hang or move, and more requests than the gateway admits.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { BackendError, BackendErrorCode, createGateway, type Gateway, type GatewayInit } from '../../src/gateway/index.js'
import { waitFor } from '../support/wait.js'
import { FakeBackend, gate, getJson, postJson, rawRequest } from './helpers.js'

describe('gateway: bad input', () => {
  let backend: FakeBackend
  let gateway: Gateway | undefined
  let base: string
  const sockets: Socket[] = []
  const timers: NodeJS.Timeout[] = []

  async function startGateway (init: GatewayInit = {}): Promise<void> {
    await gateway?.stop()
    gateway = createGateway({ backend }, { port: 0, bodyLimit: 1024, ...init })
    await gateway.start()
    base = gateway.address()
    gateway.setRoutes('shop', [
      { method: 'GET', path: '/count', cell: 'counter', cellMethod: 'get' },
      { method: 'POST', path: '/count', cell: 'counter', cellMethod: 'increment' },
      { method: 'GET', path: '/items/:id', cell: 'items', cellMethod: 'get' },
      { method: 'GET', path: '/slow', cell: 'slow', cellMethod: 'wait', timeoutMs: 300 }
    ])
  }

  beforeEach(async () => {
    backend = new FakeBackend()
      .cell('shop', 'counter', 'get', () => 1)
      .cell('shop', 'counter', 'increment', (arg: { body: unknown }) => arg.body)
      .cell('shop', 'items', 'get', (arg: { params: unknown }) => arg.params)
    await startGateway()
  })

  afterEach(async () => {
    for (const t of timers.splice(0)) clearInterval(t)
    for (const s of sockets.splice(0)) s.destroy()
    await gateway?.stop()
    gateway = undefined
  })

  describe('bodies', () => {
    it('refuses malformed JSON with 400 and does not call the cell', async () => {
      for (const body of ['{"by": 1', '{by: 1}', 'nul', '[1,]']) {
        const res = await getJson(`${base}/shop/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        assert.equal(res.status, 400, body)
        assert.equal(typeof res.json.error, 'string')
        assert.ok(res.headers.get('x-request-id') != null)
      }
      assert.equal(backend.asks.length, 0)
    })

    it('refuses a body that is not JSON (wrong or missing content type) with 400', async () => {
      const contentTypes: Array<Record<string, string>> = [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'application/octet-stream' }, {}]
      for (const headers of contentTypes) {
        const res = await rawRequest(base, 'POST', '/shop/count', { ...headers, 'content-length': '8' }, '{"by":1}')
        assert.equal(res.status, 400, JSON.stringify(headers))
        assert.match(JSON.parse(res.body).error, /content type/)
      }
      assert.equal(backend.asks.length, 0)
    })

    it('refuses an empty body declared as JSON with 400', async () => {
      const res = await rawRequest(base, 'POST', '/shop/count', { 'content-type': 'application/json', 'content-length': '0' })
      assert.equal(res.status, 400)
      assert.equal(backend.asks.length, 0)
    })

    it('refuses prototype poisoning with 400', async () => {
      const res = await getJson(`${base}/shop/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__": {"admin": true}}' })
      assert.equal(res.status, 400)
      assert.equal(backend.asks.length, 0)
    })

    it('refuses a deeply nested body (100,000 and 5,000 levels) with 400 naming the limit, before the cell', async () => {
      await startGateway({ bodyLimit: 1024 * 1024 })
      for (const depth of [100_000, 5_000]) {
        const body = '['.repeat(depth) + ']'.repeat(depth)
        const res = await getJson(`${base}/shop/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        assert.equal(res.status, 400, String(depth))
        assert.equal(res.json.error, 'JSON body is nested too deeply: more than 1000 levels')
      }
      const within = '{"a":'.repeat(900) + '1' + '}'.repeat(900)
      assert.equal((await getJson(`${base}/shop/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: within })).status, 200)
      assert.equal(backend.asks.length, 1)
    })

    it('refuses a body over the limit with 413, whether declared or streamed', async () => {
      const big = JSON.stringify({ pad: 'x'.repeat(2000) })
      const declared = await postJson(`${base}/shop/count`, JSON.parse(big))
      assert.equal(declared.status, 413)
      assert.ok(declared.headers.get('x-request-id') != null)
      assert.match(declared.json.error, /too large/i)
      const chunked = await getJson(`${base}/shop/count`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new Blob([big]).stream(),
        duplex: 'half'
      } as RequestInit)
      assert.equal(chunked.status, 413)
      assert.equal(backend.asks.length, 0)
      assert.equal((await postJson(`${base}/shop/count`, { by: 1 })).status, 200, 'still serving')
    })
  })

  describe('paths', () => {
    it('refuses dot segments, encoded dots, double slashes and encoded separators with 400', async () => {
      const paths = [
        '/shop/../_stem/routes',
        '/shop/%2e%2e/_stem/routes',
        '/shop/%2E%2E/%2e%2e/_stem/health',
        '/shop/./count',
        '/shop/items/..',
        '/shop/items/%2e%2e',
        '//shop/count',
        '/shop//count',
        '/shop/items/a%2fb',
        '/shop/items/a%5cb',
        '/shop\\count',
        '/shop/items/%zz',
        '/shop/items/a%00b'
      ]
      for (const path of paths) {
        const res = await rawRequest(base, 'GET', path)
        assert.equal(res.status, 400, path)
        assert.match(JSON.parse(res.body).error, /^invalid path/, path)
        assert.ok(res.headers['x-request-id'] != null, path)
      }
      assert.equal(backend.asks.length, 0)
    })

    it('decodes percent-encoded parameters that are not tricks', async () => {
      const res = await rawRequest(base, 'GET', '/shop/items/caf%C3%A9%20au%20lait')
      assert.equal(res.status, 200)
      assert.deepEqual(JSON.parse(res.body), { id: 'café au lait' })
    })

    it('answers 404 for a parameter longer than the router accepts', async () => {
      const res = await rawRequest(base, 'GET', `/shop/items/${'a'.repeat(2000)}`)
      assert.equal(res.status, 404)
    })
  })

  describe('slow clients', () => {
    it('cuts off a client that sends its headers one byte at a time', async () => {
      await startGateway({ headersTimeoutMs: 500, connectionsCheckingIntervalMs: 100 })
      const url = new URL(base)
      const socket = connect(Number(url.port), url.hostname)
      sockets.push(socket)
      let closed = false
      let received = ''
      socket.on('data', d => { received += d.toString() })
      socket.on('close', () => { closed = true })
      socket.on('error', () => {})
      const request = 'GET /shop/count HTTP/1.1\r\nHost: localhost\r\nX-Padding: ' + 'a'.repeat(10_000)
      let sent = 0
      timers.push(setInterval(() => {
        if (!socket.destroyed && sent < request.length) socket.write(request[sent++])
      }, 20))
      await waitFor(() => closed, { what: 'the slow client to be cut off' })
      assert.ok(sent < request.length, 'cut off before it finished its headers')
      assert.match(received, /^HTTP\/1\.1 408/)
      assert.equal((await getJson(`${base}/shop/count`)).status, 200, 'still serving others')
    })

    it('cuts off a client that trickles its body', async () => {
      await startGateway({ requestTimeoutMs: 800, connectionsCheckingIntervalMs: 100, bodyLimit: 1024 * 1024 })
      const url = new URL(base)
      const socket = connect(Number(url.port), url.hostname)
      sockets.push(socket)
      let closed = false
      let received = ''
      socket.on('data', d => { received += d.toString() })
      socket.on('close', () => { closed = true })
      socket.on('error', () => {})
      socket.write('POST /shop/count HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n')
      timers.push(setInterval(() => { if (!socket.destroyed) socket.write(' ') }, 20))
      await waitFor(() => closed, { what: 'the trickling client to be cut off' })
      assert.ok(received === '' || received.startsWith('HTTP/1.1 408'), `cut off by the request deadline, got: ${received.slice(0, 40)}`)
      assert.equal(backend.asks.length, 0)
    })

    it('closes a connection that stays silent, but not one waiting on a slow cell', async () => {
      // header and request deadlines far off: only the idle deadline can close it within waitFor's time
      await startGateway({ idleTimeoutMs: 200, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 })
      // the cell takes several idle periods to answer: the client must still get its answer
      backend.cell('shop', 'counter', 'get', async () => await new Promise(resolve => setTimeout(() => { resolve('slow but fine') }, 1000)))
      const res = await rawRequest(base, 'GET', '/shop/count')
      assert.equal(res.status, 200)
      assert.equal(JSON.parse(res.body), 'slow but fine')

      const url = new URL(base)
      const socket = connect(Number(url.port), url.hostname)
      sockets.push(socket)
      let closed = false
      socket.on('close', () => { closed = true })
      socket.on('error', () => {})
      await waitFor(() => closed, { what: 'the silent connection to be closed' })
    })
  })

  describe('cells that fail', () => {
    it('answers 504 when a cell does not answer in time, and aborts the ask', async () => {
      let signal: AbortSignal | undefined
      backend.cell('shop', 'slow', 'wait', (_arg, call) => {
        signal = call.options.signal
        return new Promise(() => {}) // never answers, ignores the abort
      })
      const res = await getJson(`${base}/shop/slow`)
      assert.equal(res.status, 504)
      assert.match(res.json.error, /did not answer within 300 ms/)
      assert.equal(signal?.aborted, true)
      const ask = backend.asks.at(-1)
      assert.ok(ask != null && ask.options.deadline > 0)
      assert.equal(gateway?.inFlight, 0)
    })

    it('retries a GET while its cell fails over, with the same message id, on another replica', async () => {
      backend.setReplicas('shop', 'counter', 2)
      let failures = 0
      backend.cell('shop', 'counter', 'get', () => {
        if (failures++ < 3) throw new BackendError(BackendErrorCode.unavailable, 'cell is moving')
        return 'moved'
      })
      const res = await getJson(`${base}/shop/count`)
      assert.equal(res.status, 200)
      assert.equal(res.json, 'moved')
      assert.equal(backend.asks.length, 4)
      assert.equal(new Set(backend.asks.map(a => a.options.messageId)).size, 1, 'one message id across retries')
      for (let i = 1; i < backend.asks.length; i++) {
        assert.notEqual(backend.asks[i].target.instance, backend.asks[i - 1].target.instance, 'a retry avoids the replica that just failed')
      }
    })

    it('waits for a cell that is away longer than a second (a failover) within the route\'s deadline, not 503', async () => {
      const back = Date.now() + 1500
      backend.cell('shop', 'counter', 'get', () => {
        if (Date.now() < back) throw new BackendError(BackendErrorCode.unavailable, 'cell is moving')
        return 'moved'
      })
      const res = await getJson(`${base}/shop/count`)
      assert.equal(res.status, 200)
      assert.equal(res.json, 'moved')
      assert.equal(new Set(backend.asks.map(a => a.options.messageId)).size, 1, 'one message id across retries')
    })

    it('answers 503 with Retry-After once a GET\'s retries (maxRetries) run out, without hanging', async () => {
      await startGateway({ maxRetries: 4 })
      backend.cell('shop', 'counter', 'get', () => { throw new BackendError(BackendErrorCode.unavailable, 'no host') })
      const res = await getJson(`${base}/shop/count`)
      assert.equal(res.status, 503)
      assert.equal(res.headers.get('retry-after'), '1')
      assert.match(res.json.error, /unavailable: no host/)
      assert.equal(backend.asks.length, 5, 'first try and 4 retries')
    })

    it('answers 503, not 504, when the route deadline passes while the cell stays unavailable', async () => {
      backend.cell('shop', 'slow', 'wait', () => { throw new BackendError(BackendErrorCode.unavailable, 'failing over') })
      const res = await getJson(`${base}/shop/slow`)
      assert.equal(res.status, 503)
      assert.match(res.json.error, /failing over/)
      assert.ok(backend.asks.length >= 1 && backend.asks.length < 5, `retried within the 300 ms deadline (${backend.asks.length} asks)`)
    })

    it('does not retry a POST unless the backend dedupes by message id', async () => {
      let failures = 0
      backend.cell('shop', 'counter', 'increment', () => {
        if (failures++ < 2) throw new BackendError(BackendErrorCode.unavailable, 'failing over')
        return 'done'
      })
      const once = await postJson(`${base}/shop/count`, {})
      assert.equal(once.status, 503)
      assert.ok(once.headers.get('retry-after') != null)
      assert.equal(backend.asks.length, 1)

      backend.dedupesByMessageId = true
      failures = 0
      backend.asks.length = 0
      const retried = await postJson(`${base}/shop/count`, {})
      assert.equal(retried.status, 200)
      assert.equal(backend.asks.length, 3)
      assert.equal(new Set(backend.asks.map(a => a.options.messageId)).size, 1)
    })

    it('answers 503 when the cell has no replica serving', async () => {
      backend.setReplicas('shop', 'counter', 0)
      await startGateway({ maxRetries: 1 })
      const res = await getJson(`${base}/shop/count`)
      assert.equal(res.status, 503)
      assert.match(res.json.error, /no replica/)
      assert.equal(backend.asks.length, 0)
    })

    it('aborts the ask when the client goes away', async () => {
      let signal: AbortSignal | undefined
      backend.cell('shop', 'counter', 'get', (_arg, call) => {
        signal = call.options.signal
        return new Promise(() => {})
      })
      const client = new AbortController()
      const pending = fetch(`${base}/shop/count`, { signal: client.signal }).catch((err: Error) => err)
      await waitFor(() => signal !== undefined, { what: 'the ask to reach the cell' })
      client.abort()
      await pending
      await waitFor(() => signal?.aborted, { what: 'the ask to be aborted' })
      await waitFor(() => gateway?.inFlight === 0, { what: 'the request to leave the in-flight count' })
    })
  })

  describe('overload', () => {
    it('refuses requests over the per-cell bound with 503 and Retry-After, never queueing', async () => {
      await startGateway({ maxInFlightPerCell: 2 })
      const held = gate<string>()
      backend.cell('shop', 'counter', 'get', () => held.promise)
      const first = [getJson(`${base}/shop/count`), getJson(`${base}/shop/count`)]
      await waitFor(() => gateway?.inFlight === 2, { what: 'two requests in flight' })
      const refused = await getJson(`${base}/shop/count`)
      assert.equal(refused.status, 503)
      assert.equal(refused.headers.get('retry-after'), '1')
      assert.match(refused.json.error, /too many requests/)
      // another cell is not affected by this cell's bound
      assert.equal((await getJson(`${base}/shop/items/1`)).status, 200)
      held.open('ok')
      for (const res of await Promise.all(first)) assert.equal(res.status, 200)
      assert.equal((await getJson(`${base}/shop/count`)).status, 200)
    })

    it('refuses requests over the global bound with 503', async () => {
      await startGateway({ maxInFlight: 1, retryAfterSeconds: 3 })
      const held = gate<string>()
      backend.cell('shop', 'counter', 'get', () => held.promise)
      const first = getJson(`${base}/shop/count`)
      await waitFor(() => gateway?.inFlight === 1, { what: 'one request in flight' })
      const refused = await getJson(`${base}/shop/items/1`)
      assert.equal(refused.status, 503)
      assert.equal(refused.headers.get('retry-after'), '3')
      held.open('ok')
      assert.equal((await first).status, 200)
    })

    it('answers 503 when the cell refuses the message (mailbox full)', async () => {
      backend.cell('shop', 'counter', 'get', () => { throw new BackendError(BackendErrorCode.overloaded, 'mailbox full') })
      const res = await getJson(`${base}/shop/count`)
      assert.equal(res.status, 503)
      assert.ok(res.headers.get('retry-after') != null)
      assert.match(res.json.error, /overloaded: mailbox full/)
      assert.equal(backend.asks.length, 1)
    })
  })
})
