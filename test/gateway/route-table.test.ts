// The live route table: per-app namespaces, matching, whole-table swaps.
import assert from 'node:assert/strict'
import { RouteTable } from '../../src/gateway/route-table.js'
import type { GatewayRoute } from '../../src/gateway/index.js'

const r = (method: string, path: string, cellMethod = 'get'): GatewayRoute => ({ method, path, cell: 'c', cellMethod })

describe('gateway/route-table', () => {
  it('matches routes under their app prefix, with decoded params', () => {
    const table = new RouteTable()
    table.set('shop', [r('GET', '/'), r('GET', '/items/:id'), r('GET', '/items/new', 'fresh')])
    assert.equal(table.match('GET', '/shop')?.entry.publicPath, '/shop')
    assert.equal(table.match('GET', '/shop/')?.entry.publicPath, '/shop')
    assert.deepEqual(table.match('GET', '/shop/items/a%20b')?.params, { id: 'a b' })
    assert.equal(table.match('GET', '/shop/items/new')?.entry.route.cellMethod, 'fresh', 'a static segment wins over a parameter')
    assert.equal(table.match('POST', '/shop/items/1'), undefined)
    assert.equal(table.match('GET', '/items/1'), undefined)
    assert.equal(table.match('GET', '/SHOP/items/1'), undefined, 'case-sensitive')
  })

  it('falls back from HEAD to GET, but not the other way round', () => {
    const table = new RouteTable()
    table.set('shop', [r('GET', '/a'), r('HEAD', '/b')])
    assert.equal(table.match('HEAD', '/shop/a')?.entry.route.method, 'GET')
    assert.equal(table.match('GET', '/shop/b'), undefined)
  })

  it('keeps apps apart and replaces one app without touching another', () => {
    const table = new RouteTable()
    table.set('shop', [r('GET', '/count', 'shopCount')])
    table.set('blog', [r('GET', '/count', 'blogCount')])
    assert.equal(table.match('GET', '/shop/count')?.entry.route.cellMethod, 'shopCount')
    assert.equal(table.match('GET', '/blog/count')?.entry.route.cellMethod, 'blogCount')
    table.set('shop', [r('GET', '/total')])
    assert.equal(table.match('GET', '/shop/count'), undefined)
    assert.ok(table.match('GET', '/shop/total') != null)
    assert.ok(table.match('GET', '/blog/count') != null)
    assert.equal(table.appCount, 2)
    assert.equal(table.remove('blog'), true)
    assert.equal(table.match('GET', '/blog/count'), undefined)
    assert.deepEqual(table.entries().map(e => e.publicPath), ['/shop/total'])
  })

  it('changes nothing when an update is refused', () => {
    const table = new RouteTable()
    table.set('shop', [r('GET', '/count')])
    assert.throws(() => { table.set('shop', [r('GET', '/new'), r('GET', '/new')]) }, /clashes/)
    assert.throws(() => { table.set('_stem', [r('GET', '/health')]) }, /invalid app name/)
    assert.ok(table.match('GET', '/shop/count') != null)
    assert.equal(table.match('GET', '/shop/new'), undefined)
    assert.equal(table.appCount, 1)
  })

  it('does not let a caller mutate an installed route afterwards', () => {
    const table = new RouteTable()
    const route = r('GET', '/count')
    table.set('shop', [route])
    route.cellMethod = 'changed'
    assert.equal(table.match('GET', '/shop/count')?.entry.route.cellMethod, 'get')
  })
})
