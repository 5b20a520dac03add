// Gateway routes to keyed cells (`GET /carts/:id -> cart[:id].get`): the key comes from the
// path (decoded), no replica is picked, and a path parameter that cannot be a key is a 400.
import assert from 'node:assert/strict'
import { createGateway, type Gateway } from '../../src/gateway/index.js'
import { FakeBackend, getJson, rawRequest, recordingLogger } from './helpers.js'

describe('gateway: routes to keyed cells', () => {
  let backend: FakeBackend
  let gateway: Gateway
  let base: string

  beforeEach(async () => {
    backend = new FakeBackend()
    backend.cell('shop', 'cart', 'get', (_arg, call) => ({ key: call.target.key }))
    gateway = createGateway({ backend, logger: recordingLogger() }, { port: 0 })
    await gateway.start()
    base = gateway.address()
    gateway.setRoutes('shop', [{ method: 'GET', path: '/carts/:id', cell: 'cart', cellMethod: 'get', key: 'id' }])
  })
  afterEach(async () => { await gateway.stop() })

  it('asks the key the path names, decoded', async () => {
    const res = await getJson(`${base}/shop/carts/a%23c%25%20%C3%A9`)
    assert.equal(res.status, 200)
    assert.deepEqual(res.json, { key: 'a#c% é' })
    assert.deepEqual(backend.asks.at(-1)?.target, { app: 'shop', cell: 'cart', key: 'a#c% é' })
    // the gateway refuses encoded separators in any path (request-path.ts): such keys are for the SDK and stem call
    assert.equal((await rawRequest(base, 'GET', '/shop/carts/a%2Fb')).status, 400)
  })

  it('answers 400 with one line for a key that is too long or holds a control character, and asks nothing', async () => {
    const long = await rawRequest(base, 'GET', `/shop/carts/${'k'.repeat(257)}`)
    assert.equal(long.status, 400)
    assert.match(JSON.parse(long.body).error, /^invalid key: longer than 256 bytes$/)
    const control = await rawRequest(base, 'GET', '/shop/carts/a%0Ab')
    assert.equal(control.status, 400)
    assert.match(JSON.parse(control.body).error, /control character/)
    assert.equal(backend.asks.length, 0)
  })
})
