// The control API refuses JSON bodies nested past the bound with a 400, not a 500.
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createApiServer } from '../../src/api/server.js'
import type { ApiServer } from '../../src/api/server.js'
import type { NodeControl } from '../../src/api/types.js'

describe('api: bounded JSON bodies', () => {
  let server: ApiServer
  let contributed = 0
  const control = {
    status: () => { throw new Error('unused') },
    peers: () => { throw new Error('unused') },
    invite: () => { throw new Error('unused') },
    contribute: async () => { contributed++; return {} }
  } as unknown as NodeControl

  before(async () => {
    server = createApiServer(control, { host: '127.0.0.1', port: 0, token: 't' })
    server.app.post('/v1/echo', { bodyLimit: 1024 * 1024 }, async request => ({ body: request.body }))
    await server.start()
  })
  after(async () => { await server.stop() })

  const post = async (path: string, body: string): Promise<{ status: number, json: { error?: string } }> => {
    const res = await fetch(`${server.url()}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer t' }, body })
    return { status: res.status, json: await res.json() as { error?: string } }
  }

  it('answers 400 naming the limit for 100,000 and 5,000 levels of nesting', async () => {
    for (const depth of [100_000, 5_000]) {
      const res = await post('/v1/echo', '['.repeat(depth) + ']'.repeat(depth))
      assert.equal(res.status, 400, String(depth))
      assert.equal(res.json.error, 'JSON body is nested too deeply: more than 1000 levels')
    }
    const res = await post('/v1/contribute', '{"cpu":' + '['.repeat(5000) + ']'.repeat(5000) + '}')
    assert.equal(res.status, 400)
    assert.equal(contributed, 0)
  })

  it('still parses bodies within the bound and refuses prototype poisoning', async () => {
    assert.deepEqual(await post('/v1/echo', '{"a":[[1]]}'), { status: 200, json: { body: { a: [[1]] } } })
    assert.equal((await post('/v1/echo', '{"__proto__":{"x":1}}')).status, 400)
  })
})
