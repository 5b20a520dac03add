import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManifestError, loadManifest, manifestLimits, parseManifest, resolveCellCode } from '../../src/topology/manifest.js'

const shop = `app: shop
cells:
  counter:
    code: ./counter.js      # .js or .ts; npm imports are bundled
    replicas: 1
    clones: 1
    memory: 32MiB
    timeout: 500ms
    mailbox: 1000
routes:
  - GET /count -> counter.get
  - POST /count -> counter.increment
`

/** the first error line of parsing `text` */
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

function allRefusals (text: string): string[] {
  try {
    parseManifest(text, 'shop.yaml')
  } catch (err) {
    assert.ok(err instanceof ManifestError)
    return err.lines()
  }
  assert.fail('manifest was accepted')
}

function withCell (fields: string): string {
  return `app: shop\ncells:\n  counter:\n    code: ./counter.js\n${fields.split('\n').map(l => '    ' + l).join('\n')}\n`
}

describe('topology/manifest', () => {
  it('parses the SPEC example into a typed manifest', () => {
    const m = parseManifest(shop, 'shop.yaml')
    assert.deepEqual(m, {
      app: 'shop',
      cells: { counter: { code: './counter.js', replicas: 1, clones: 1, durability: 'disk', memory: 32 * 2 ** 20, timeout: 500, mailbox: 1000 } },
      routes: [
        { method: 'GET', path: '/count', cell: 'counter', handler: 'get' },
        { method: 'POST', path: '/count', cell: 'counter', handler: 'increment' }
      ]
    })
  })

  it('fills defaults: replicas 1, clones 1, durability disk, memory 32MiB, timeout 1s, mailbox 1000, no routes', () => {
    const m = parseManifest('app: a\ncells:\n  c:\n    code: c.ts\n', 'a.yaml')
    assert.deepEqual(m.cells.c, { code: 'c.ts', replicas: 1, clones: 1, durability: 'disk', memory: 32 * 2 ** 20, timeout: 1000, mailbox: 1000 })
    assert.deepEqual(m.routes, [])
  })

  it('takes durability disk or memory, and refuses anything else with the field', () => {
    assert.equal(parseManifest(withCell('durability: memory'), 'shop.yaml').cells.counter.durability, 'memory')
    assert.equal(refusal(withCell('durability: ssd')), 'shop.yaml: cells.counter.durability: "ssd" is not a durability level (expected disk or memory)')
    assert.equal(refusal(withCell('durability: [disk]')), 'shop.yaml: cells.counter.durability: a list is not a durability level (expected disk or memory)')
  })

  it('names file, field and reason of a bad size', () => {
    assert.equal(refusal(withCell('memory: 32 MB')), 'shop.yaml: cells.counter.memory: "32 MB" is not a size (use e.g. 32MiB)')
  })

  it('refuses values out of bounds', () => {
    assert.match(refusal(withCell('memory: 4MiB')), /cells\.counter\.memory: "4MiB" is out of range \(8MiB\.\.2GiB\)/)
    assert.match(refusal(withCell('memory: 3GiB')), /out of range/)
    assert.match(refusal(withCell('timeout: 2m')), /cells\.counter\.timeout: "2m" is out of range \(1ms\.\.1m\)/)
    assert.match(refusal(withCell('timeout: 0ms')), /out of range/)
    assert.match(refusal(withCell('timeout: soon')), /cells\.counter\.timeout: "soon" is not a duration/)
    assert.match(refusal(withCell('replicas: -1')), /cells\.counter\.replicas: -1 is out of range \(0\.\.1000\)/)
    assert.match(refusal(withCell('replicas: 1.5')), /cells\.counter\.replicas: 1\.5 is not an integer/)
    assert.match(refusal(withCell('replicas: "2"')), /cells\.counter\.replicas: "2" is not an integer/)
    assert.match(refusal(withCell('clones: 8')), /cells\.counter\.clones: 8 is out of range/)
    assert.match(refusal(withCell('mailbox: 0')), /cells\.counter\.mailbox: 0 is out of range \(1\.\.1000000\)/)
    assert.match(refusal(withCell('memory: 33554432')), /cells\.counter\.memory: 33554432 is not a size/)
  })

  it('accepts replicas 0 and the bounds themselves', () => {
    const m = parseManifest(withCell('replicas: 0\nmemory: 8MiB\ntimeout: 1m\nclones: 7'), 'shop.yaml')
    assert.equal(m.cells.counter.replicas, 0)
    assert.equal(m.cells.counter.memory, 8 * 2 ** 20)
    assert.equal(m.cells.counter.timeout, 60_000)
  })

  it('validates app and cell names', () => {
    assert.match(refusal(shop.replace('app: shop', 'app: Shop')), /shop\.yaml: app: "Shop" is not a valid name/)
    assert.match(refusal(shop.replace('app: shop', 'app: my_shop')), /app: "my_shop" is not a valid name/)
    assert.match(refusal(shop.replace('app: shop', 'app: -shop')), /app: .* is not a valid name/)
    assert.match(refusal(shop.replace('app: shop', 'app: ' + 'a'.repeat(64))), /app: .* is not a valid name/)
    assert.match(refusal(shop.replace('app: shop', 'app: 12')), /app: 12 is not a name/)
    assert.match(refusal(shop.replace('app: shop\n', '')), /app: is required/)
    assert.match(refusal('app: shop\ncells:\n  Counter:\n    code: c.js\n'), /cells\.Counter: "Counter" is not a valid name/)
    assert.match(refusal('app: shop\ncells:\n  a.b:\n    code: c.js\n'), /cells\.a\.b: "a\.b" is not a valid name/)
  })

  it('validates code paths', () => {
    assert.match(refusal('app: shop\ncells:\n  c:\n    replicas: 1\n'), /cells\.c\.code: is required/)
    assert.match(refusal('app: shop\ncells:\n  c:\n    code: ./c.py\n'), /cells\.c\.code: "\.\/c\.py" must be a \.js or \.ts file/)
    assert.match(refusal('app: shop\ncells:\n  c:\n    code: /etc/c.js\n'), /cells\.c\.code: "\/etc\/c\.js" must be relative to the manifest file/)
    assert.match(refusal('app: shop\ncells:\n  c:\n    code: 5\n'), /cells\.c\.code: 5 is not a path/)
    assert.equal(resolveCellCode('/home/u/app/shop.yaml', { code: './cells/c.ts' }), '/home/u/app/cells/c.ts')
  })

  it('refuses unknown fields at every level', () => {
    assert.match(refusal(shop + 'replica: 2\n'), /shop\.yaml: replica: unknown field \(expected one of app, cells, routes, streams\)/)
    assert.match(refusal(withCell('replica: 2')), /cells\.counter\.replica: unknown field/)
  })

  it('validates routes', () => {
    const r = (line: string): string => refusal(shop.replace('  - POST /count -> counter.increment', `  - ${line}`))
    assert.match(r('FETCH /count -> counter.get'), /routes\[1\]: method "FETCH" is not one of GET, POST, PUT, PATCH, DELETE/)
    assert.match(r('GET count -> counter.get'), /routes\[1\]: path "count" must start with '\/'/)
    assert.match(r('GET /count -> nope.get'), /routes\[1\]: target cell "nope" is not defined in cells/)
    assert.match(r('GET /x -> counter'), /routes\[1\]: target "counter" is not `cell\.method`/)
    assert.match(r('GET /x -> counter.constructor'), /is not `cell\.method`/)
    assert.match(r('GET /x counter.get'), /routes\[1\]: "GET \/x counter\.get" is not a route/)
    assert.match(r('GET /a//b -> counter.get'), /invalid segment ""/)
    assert.match(r('GET /a/:id/:id -> counter.get'), /repeats the parameter :id/)
    assert.match(r('GET /a b -> counter.get'), /is not a route/)
    assert.match(r('GET /count -> counter.other'), /routes\[1\]: GET \/count matches the same requests as routes\[0\]/)
    assert.match(refusal('app: shop\ncells:\n  c:\n    code: c.js\nroutes:\n  - GET /o/:id -> c.get\n  - GET /o/:key -> c.get\n'), /matches the same requests/)
    assert.match(refusal('app: shop\ncells:\n  c:\n    code: c.js\nroutes: GET /x -> c.get\n'), /routes: "GET \/x -> c\.get" is not a list of routes/)
    const ok = parseManifest('app: shop\ncells:\n  c:\n    code: c.js\nroutes:\n  - GET / -> c.root\n  - DELETE /orders/:id -> c.remove\n  - GET /orders/latest -> c.latest\n', 'shop.yaml')
    assert.deepEqual(ok.routes[1], { method: 'DELETE', path: '/orders/:id', cell: 'c', handler: 'remove' })
    assert.equal(ok.routes.length, 3)
  })

  it('accepts links to local and foreign cells and refuses unknown local ones', () => {
    const m = parseManifest(withCell('links: [counter, other/cell, shop/counter]'), 'shop.yaml')
    assert.deepEqual(m.cells.counter.links, ['counter', 'other/cell'])
    assert.match(refusal(withCell('links: [nope]')), /cells\.counter\.links\[0\]: cell "nope" is not defined in cells/)
    assert.match(refusal(withCell('links: [a/b/c]')), /links\[0\]: "a\/b\/c" is not `cell` or `app\/cell`/)
    assert.match(refusal(withCell('links: counter')), /cells\.counter\.links: "counter" is not a list/)
    assert.deepEqual(parseManifest(withCell('links: []'), 'shop.yaml').cells.counter.links, [])
  })

  it('collects every problem, not only the first', () => {
    const lines = allRefusals('app: Shop\ncells:\n  c:\n    code: c.py\n    memory: lots\n    colnes: 1\nroutes:\n  - GET /x -> d.get\n')
    assert.equal(lines.length, 5, lines.join('\n'))
    assert.ok(lines.every(l => l.startsWith('shop.yaml: ')))
    try { parseManifest('app: Shop\ncells:\n  c:\n    code: c.py\n', 'shop.yaml') } catch (err) {
      assert.match((err as Error).message, /\(and 1 more problem\)$/)
    }
  })

  it('refuses non-mapping roots and structural mistakes', () => {
    assert.equal(refusal(''), 'shop.yaml: (root): the manifest is empty (expected a mapping with app, cells and routes)')
    assert.equal(refusal('# only a comment\n'), 'shop.yaml: (root): the manifest is empty (expected a mapping with app, cells and routes)')
    assert.match(refusal('- a\n- b\n'), /\(root\): the manifest is a list/)
    assert.match(refusal('just text'), /\(root\): the manifest is "just text"/)
    assert.match(refusal('app: shop\ncells: []\n'), /cells: a list is not a mapping of cell names/)
    assert.match(refusal('app: shop\ncells: {}\n'), /cells: defines no cell/)
    assert.match(refusal('app: shop\ncells:\n  c: ./c.js\n'), /cells\.c: "\.\/c\.js" is not a mapping/)
  })

  it('refuses YAML syntax errors, duplicate keys and several documents with a position', () => {
    assert.match(refusal('app: shop\napp: shop2\ncells:\n  c:\n    code: c.js\n'), /shop\.yaml: 2:1: duplicate key/)
    assert.match(refusal(withCell('memory: 32MiB\nmemory: 64MiB')), /duplicate key/)
    assert.match(refusal('app: [shop\n'), /shop\.yaml: \d+:\d+: /)
    assert.equal(refusal('app: shop\n---\napp: other\n'), 'shop.yaml: 2:1: a manifest is a single YAML document')
    assert.equal(refusal('app: !!binary aGVsbG8=\ncells:\n  c:\n    code: c.js\n'), 'shop.yaml: app: binary data is not a name')
    assert.equal(refusal('? [a]\n: 1\napp: shop\n'), 'shop.yaml: 1:3: keys must be plain names, not lists or mappings')
    assert.match(refusal('app: !custom shop\n'), /shop\.yaml: \d+:\d+: .*tag/i)
  })

  it('stops a YAML alias bomb quickly', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for (let i = 1; i < 10; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill('*' + String.fromCharCode(96 + i)).join(',')}]`)
    const bomb = lines.join('\n') + '\n'
    assert.match(refusal(bomb), /shop\.yaml: \(yaml\): .*alias/i)
    // modest alias use is fine
    const m = parseManifest('app: shop\ncells:\n  a: &base\n    code: a.js\n    memory: 64MiB\n  b: *base\n', 'shop.yaml')
    assert.equal(m.cells.b.memory, 64 * 2 ** 20)
  })

  it('refuses oversized text and files', async () => {
    const big = shop + '#'.repeat(manifestLimits.maxFileBytes)
    assert.match(refusal(big), /shop\.yaml: \(file\): is larger than 256KiB/)
    const dir = await mkdtemp(join(tmpdir(), 'stem-manifest-'))
    try {
      await writeFile(join(dir, 'big.yaml'), big)
      await assert.rejects(loadManifest(join(dir, 'big.yaml')), /big\.yaml: \(file\): is larger than 256KiB/)
      await writeFile(join(dir, 'shop.yaml'), shop)
      assert.equal((await loadManifest(join(dir, 'shop.yaml'))).app, 'shop')
      await assert.rejects(loadManifest(join(dir, 'missing.yaml')), /missing\.yaml: \(file\): cannot be read \(ENOENT\)/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
