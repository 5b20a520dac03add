// The manifest fields of keyed cells (SPEC §5): `keyed`, `idle`, replicas as shards, and
// `cell[:param].method` routes.
import assert from 'node:assert/strict'
import { ManifestError, parseManifest, routeTarget } from '../../src/topology/manifest.js'
import { canonicalManifest } from '../../src/topology/manifest-canonical.js'

function manifest (cart: string, routes = ''): string {
  return `app: shop\ncells:\n  cart:\n    code: ./cart.js\n${cart.split('\n').map(l => '    ' + l).join('\n')}\n  counter:\n    code: ./counter.js\n${routes === '' ? '' : `routes:\n${routes.split('\n').map(l => `  - ${l}`).join('\n')}\n`}`
}

function refusal (text: string): string {
  try {
    parseManifest(text, 'shop.yaml')
  } catch (err) {
    assert.ok(err instanceof ManifestError, String(err))
    assert.ok(!err.message.includes('\n'), 'one line')
    return err.lines()[0]
  }
  assert.fail('manifest was accepted')
}

describe('manifest: keyed cells', () => {
  it('takes keyed: true with 16 shards and idle 5m by default', () => {
    const m = parseManifest(manifest('keyed: true'), 'shop.yaml')
    assert.deepEqual({ keyed: m.cells.cart.keyed, idle: m.cells.cart.idle, replicas: m.cells.cart.replicas }, { keyed: true, idle: 300_000, replicas: 16 })
    const n = parseManifest(manifest('keyed: true\nidle: 30s\nreplicas: 4'), 'shop.yaml')
    assert.deepEqual({ idle: n.cells.cart.idle, replicas: n.cells.cart.replicas }, { idle: 30_000, replicas: 4 })
    assert.equal(parseManifest(manifest('keyed: false'), 'shop.yaml').cells.cart.keyed, undefined)
  })

  it('refuses bad keyed fields with the field and reason', () => {
    assert.match(refusal(manifest('keyed: yes')), /cells\.cart\.keyed: "yes" is not true or false/)
    assert.match(refusal(manifest('idle: 1m')), /cells\.cart\.idle: only keyed cells are passivated/)
    assert.match(refusal(manifest('keyed: true\nidle: 10ms')), /cells\.cart\.idle:/)
    assert.match(refusal(manifest('keyed: true\nreplicas: 0')), /cells\.cart\.replicas: a keyed cell has 1–1024 shards/)
  })

  it('routes a keyed cell with the path parameter that holds the key', () => {
    const m = parseManifest(manifest('keyed: true', 'GET /carts/:id -> cart[:id].get\nGET /count -> counter.get'), 'shop.yaml')
    const route = m.routes.find(r => r.cell === 'cart')
    assert.deepEqual(route, { method: 'GET', path: '/carts/:id', cell: 'cart', handler: 'get', key: 'id' })
    assert.equal(routeTarget(route as NonNullable<typeof route>), 'cart[:id].get')
    assert.match(canonicalManifest(m), /GET \/carts\/:id -> cart\[:id\]\.get/)
  })

  it('refuses a keyed route without its key, with a key not in the path, or to a cell that is not keyed', () => {
    assert.match(refusal(manifest('keyed: true', 'GET /carts/:id -> cart.get')), /routes\[0\]: cell cart is keyed: name the path parameter that holds the key, cart\[:id\]\.get/)
    assert.match(refusal(manifest('keyed: true', 'GET /carts/:id -> cart[:user].get')), /the key of "cart\[:user\]\.get" is path parameter :user, which "\/carts\/:id" does not have/)
    assert.match(refusal(manifest('replicas: 1', 'GET /carts/:id -> cart[:id].get')), /routes\[0\]: cell cart is not keyed: route it as cart\.get/)
    assert.match(refusal(manifest('keyed: true', 'GET /carts/:id -> cart[id].get')), /target cell "cart\[id\]" is not defined|is not `cell\.method`/)
  })
})
