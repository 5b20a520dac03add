import assert from 'node:assert/strict'
import { parseManifest } from '../../src/topology/manifest.js'
import { canonicalManifest, manifestHash, withBundles } from '../../src/topology/manifest-canonical.js'
import { diffManifests } from '../../src/topology/manifest-diff.js'

const base = `app: shop
cells:
  counter:
    code: ./counter.js
    clones: 1
    memory: 32MiB
  cart:
    code: ./cart.ts
    replicas: 2
routes:
  - GET /count -> counter.get
  - POST /cart -> cart.add
`
const parse = (t: string): ReturnType<typeof parseManifest> => parseManifest(t, 'shop.yaml')

describe('topology/manifest canonical encoding and diff', () => {
  it('hashes equal apps equally, whatever key order, route order or unit spelling', () => {
    const reordered = `routes:
  - POST /cart -> cart.add
  - GET /count -> counter.get
cells:
  cart:
    replicas: 2
    code: ./cart.ts
  counter:
    memory: 32768KiB
    clones: 1
    code: ./counter.js
    mailbox: 1000
app: shop
`
    assert.equal(canonicalManifest(parse(base)), canonicalManifest(parse(reordered)))
    assert.equal(manifestHash(parse(base)), manifestHash(parse(reordered)))
    assert.match(manifestHash(parse(base)), /^[0-9a-f]{64}$/)
  })

  it('hashes the default durability like no durability (manifests published before the field keep their hash)', () => {
    assert.equal(manifestHash(parse(base.replace('    clones: 1\n', '    clones: 1\n    durability: disk\n'))), manifestHash(parse(base)))
  })

  it('hashes any real change differently', () => {
    const h = manifestHash(parse(base))
    for (const changed of [
      base.replace('memory: 32MiB', 'memory: 64MiB'),
      base.replace('replicas: 2', 'replicas: 3'),
      base.replace('GET /count', 'GET /counts'),
      base.replace('./cart.ts', './cart2.ts'),
      base.replace('    clones: 1\n', '    clones: 2\n'),
      base.replace('    clones: 1\n', '    clones: 1\n    durability: memory\n')
    ]) assert.notEqual(manifestHash(parse(changed)), h)
    const m = parse(base)
    assert.notEqual(manifestHash(withBundles(m, { counter: 'a'.repeat(64), cart: 'b'.repeat(64) })),
      manifestHash(withBundles(m, { counter: 'a'.repeat(64), cart: 'c'.repeat(64) })))
    assert.throws(() => withBundles(m, { counter: 'a' }), /no bundle for cell cart/)
  })

  it('diffs nothing between a manifest and itself', () => {
    const d = diffManifests(parse(base), parse(base))
    assert.equal(d.unchanged, true)
  })

  it('diffs cells, code, limits, counts and routes', () => {
    const after = parse(`app: shop
cells:
  counter:
    code: ./counter2.js
    clones: 2
    memory: 64MiB
  cart:
    code: ./cart.ts
    replicas: 3
  search:
    code: ./search.js
routes:
  - GET /count -> counter.get
  - GET /search -> search.find
`)
    const d = diffManifests(parse(base), after)
    assert.equal(d.unchanged, false)
    assert.deepEqual(d.cellsAdded, ['search'])
    assert.deepEqual(d.cellsRemoved, [])
    assert.deepEqual(d.codeChanged, ['counter'])
    assert.deepEqual(d.limitsChanged, ['counter'])
    assert.deepEqual(d.replicasChanged, [{ cell: 'cart', from: 2, to: 3 }])
    assert.deepEqual(d.clonesChanged, [{ cell: 'counter', from: 1, to: 2 }])
    assert.deepEqual(d.routesAdded, [{ method: 'GET', path: '/search', cell: 'search', handler: 'find' }])
    assert.deepEqual(d.routesRemoved, [{ method: 'POST', path: '/cart', cell: 'cart', handler: 'add' }])
    assert.deepEqual(diffManifests(after, parse(base)).cellsRemoved, ['search'])
  })

  it('compares code by bundle hash once bundles are known', () => {
    const m = parse(base)
    const a = withBundles(m, { counter: 'a'.repeat(64), cart: 'b'.repeat(64) })
    const moved = withBundles(parse(base.replace('./cart.ts', './src/cart.ts')), { counter: 'a'.repeat(64), cart: 'b'.repeat(64) })
    assert.deepEqual(diffManifests(a, moved).codeChanged, [], 'same bundle under another path is the same code')
    const rebuilt = withBundles(m, { counter: 'a'.repeat(64), cart: 'd'.repeat(64) })
    assert.deepEqual(diffManifests(a, rebuilt).codeChanged, ['cart'])
    assert.throws(() => diffManifests(m, parse(base.replace('app: shop', 'app: other'))), /different apps/)
  })
})
