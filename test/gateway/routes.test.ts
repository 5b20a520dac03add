// validateRoutes: what a publish refuses before anything is published.
import assert from 'node:assert/strict'
import { validateRoutes, type GatewayRoute } from '../../src/gateway/index.js'

const r = (method: string, path: string, extra: Partial<GatewayRoute> = {}): GatewayRoute =>
  ({ method, path, cell: 'counter', cellMethod: 'get', ...extra })

describe('gateway/routes: validateRoutes', () => {
  it('accepts a normal route set', () => {
    validateRoutes('shop', [
      r('GET', '/'),
      r('GET', '/count'),
      r('POST', '/count'),
      r('GET', '/items/:id'),
      r('GET', '/items/:id/tags/:tag'),
      r('GET', '/items/new'),
      r('DELETE', '/items/:id', { timeoutMs: 1500 }),
      r('GET', '/v1.0/status~x/')
    ])
    validateRoutes('a', [])
  })

  it('refuses the same METHOD and path twice, naming both routes', () => {
    assert.throws(() => { validateRoutes('shop', [r('GET', '/count'), r('POST', '/count'), r('GET', '/count', { cellMethod: 'other' })]) },
      { message: 'app shop: route 3 (GET /count -> counter.other) clashes with route 1 (GET /count -> counter.get): both match the same requests' })
    assert.throws(() => { validateRoutes('shop', [r('GET', '/count'), r('GET', '/count/')]) }, /route 2 .* clashes with route 1/)
  })

  it('refuses paths that differ only in parameter names', () => {
    assert.throws(() => { validateRoutes('shop', [r('GET', '/items/:id'), r('GET', '/items/:name')]) }, /route 2 .*clashes with route 1/)
    assert.throws(() => { validateRoutes('shop', [r('GET', '/a/:x/b/:y'), r('GET', '/a/:p/b/:q')]) }, /clashes/)
  })

  it('takes every cell name a manifest allows (a fault: `my-app` was refused, so its routes were never installed)', () => {
    validateRoutes('my-app', [r('GET', '/hello/:name', { cell: 'my-app' }), r('GET', '/x', { cell: 'a1-b2-c3' })])
    assert.throws(() => { validateRoutes('shop', [r('GET', '/x', { cell: '-x' })]) }, /cell must be a cell name/)
  })

  it('refuses bad app names', () => {
    for (const app of ['', '_stem', 'a/b', 'shop!', '-x', 'x'.repeat(64), '..']) {
      assert.throws(() => { validateRoutes(app, []) }, /invalid app name/, app)
    }
  })

  it('refuses bad methods, paths, cells, cell methods and timeouts with the route named', () => {
    const cases: Array<[GatewayRoute, RegExp]> = [
      [r('FETCH', '/x'), /route 1 \(FETCH \/x -> counter.get\): method must be one of GET, HEAD/],
      [r('get', '/x'), /method must be/],
      [r('GET', 'x'), /path must start with \//],
      [r('GET', '/a//b'), /empty segment/],
      [r('GET', '/a/../b'), /dot segment/],
      [r('GET', '/a/./b'), /dot segment/],
      [r('GET', '/a/*'), /cannot match literally/],
      [r('GET', '/a b'), /cannot match literally/],
      [r('GET', '/a%2e'), /cannot match literally/],
      [r('GET', '/files/:name.json'), /parameter ":name.json"/],
      [r('GET', '/a/:'), /parameter ":"/],
      [r('GET', '/a/:id(^\\d+$)'), /parameter/],
      [r('GET', '/a/:id/b/:id'), /appears twice/],
      [r('GET', '/x', { cell: 'a/b' }), /cell must be a cell name/],
      [r('GET', '/x', { cell: '' }), /cell must be/],
      [r('GET', '/x', { cellMethod: 'get()' }), /cell method must be/],
      [r('GET', '/x', { timeoutMs: 0 }), /timeoutMs must be/],
      [r('GET', '/x', { timeoutMs: 1.5 }), /timeoutMs must be/],
      [r('GET', '/x', { timeoutMs: 1e9 }), /timeoutMs must be/]
    ]
    for (const [route, error] of cases) {
      assert.throws(() => { validateRoutes('shop', [route]) }, error, JSON.stringify(route))
    }
  })

  it('refuses things that are not routes', () => {
    assert.throws(() => { validateRoutes('shop', null as unknown as GatewayRoute[]) }, /routes must be a list/)
    assert.throws(() => { validateRoutes('shop', [null as unknown as GatewayRoute]) }, /route 1 \(null\): not a route object/)
    assert.throws(() => { validateRoutes('shop', [{ method: 'GET' } as unknown as GatewayRoute]) }, /path must start with/)
  })
})
