// The example apps of examples/: every manifest is valid, every cell bundles, and each app
// runs for real: cells transformed in a cell runtime (isolates in a cell host process),
// reached over HTTP through the real gateway with each manifest's own routes.
import { strict as assert } from 'node:assert'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeKey } from '../../src/cells/address.js'
import { buildBundle, createCellRuntime, type CellBundle, type CellRuntime } from '../../src/cells/index.js'
import { createGateway, replyValue, type Gateway } from '../../src/gateway/index.js'
import { loadManifest, resolveCellCode, type AppManifest } from '../../src/topology/manifest.js'
import { createEd25519Key, type PrivateKey } from '../../src/wire/keys.js'
import { waitFor } from '../support/wait.js'

const examplesDir = join(process.cwd(), 'examples')
const exampleNames = readdirSync(examplesDir, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()

interface Example { name: string, path: string, manifest: AppManifest }

async function loadExamples (): Promise<Example[]> {
  return await Promise.all(exampleNames.map(async name => {
    const path = join(examplesDir, name, 'app.yaml')
    return { name, path, manifest: await loadManifest(path) }
  }))
}

async function bundleAll (example: Example, owner: PrivateKey): Promise<Map<string, CellBundle>> {
  const bundles = new Map<string, CellBundle>()
  for (const [cell, spec] of Object.entries(example.manifest.cells)) {
    bundles.set(cell, await buildBundle({
      entry: resolveCellCode(example.path, spec),
      app: example.manifest.app,
      cell,
      limits: { memory: spec.memory, timeout: spec.timeout, mailbox: spec.mailbox },
      owner,
      ...(spec.keyed === true ? { keyed: { idle: spec.idle ?? 300_000 } } : {})
    }))
  }
  return bundles
}

describe('examples', function () {
  it('has at least the counter, pipeline and greeter-ts apps, each with a README', () => {
    for (const name of ['counter', 'pipeline', 'greeter-ts']) assert.ok(exampleNames.includes(name), name)
    for (const name of exampleNames) {
      assert.ok(existsSync(join(examplesDir, name, 'README.md')), `${name}/README.md`)
      assert.ok(existsSync(join(examplesDir, name, 'app.yaml')), `${name}/app.yaml`)
    }
  })

  it('every manifest parses and names code that exists', async () => {
    for (const example of await loadExamples()) {
      assert.ok(Object.keys(example.manifest.cells).length > 0, example.name)
      assert.ok(example.manifest.routes.length > 0, `${example.name} has HTTP routes`)
      for (const spec of Object.values(example.manifest.cells)) {
        assert.ok(existsSync(resolveCellCode(example.path, spec)), `${example.name}: ${spec.code}`)
      }
    }
    const [counter] = (await loadExamples()).filter(e => e.name === 'counter')
    assert.equal(counter.manifest.cells.counter.clones, 1)
    assert.deepEqual(counter.manifest.routes.map(r => `${r.method} ${r.path} -> ${r.cell}.${r.handler}`), ['GET /count -> counter.get', 'POST /count -> counter.increment'])
  })

  it('every cell bundles into one self-contained module', async () => {
    const owner = await createEd25519Key()
    for (const example of await loadExamples()) {
      for (const [cell, bundle] of await bundleAll(example, owner)) {
        assert.equal(bundle.cell, cell)
        assert.doesNotMatch(bundle.code, /^\s*import\s/m, `${example.name}/${cell} has no imports left`)
        assert.match(bundle.code, /export\s*\{[^}]*as default/, `${example.name}/${cell} exports its class`)
      }
    }
    const [greeter] = (await loadExamples()).filter(e => e.name === 'greeter-ts')
    const code = (await bundleAll(greeter, owner)).get('greeter')!.code
    assert.match(code, /charMap/, 'slugify is bundled into the greeter')
    assert.doesNotMatch(code, /interface HttpRequest/, 'TypeScript is compiled away')
  })

  it('the TypeScript examples type-check with tsc --noEmit against the stem/cell types; misuse of stem and the SDK does not', function () {
    this.timeout(60_000)
    const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc')
    const run = spawnSync(process.execPath, [tsc, '-p', join(examplesDir, 'tsconfig.json')], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stdout + run.stderr)
    // and the check can fail: a misuse of the stem object is an error
    const dir = mkdtempSync(join(examplesDir, '.typecheck-'))
    try {
      writeFileSync(join(dir, 'bad.ts'), "import type { HttpRequest } from 'stem/cell'\nexport default class Bad { m (r: HttpRequest) { const n: number = stem.ask<string>('a/b', 'c'); stem.nope(); return [r, n] } }\n")
      // Node code asking a cell through the SDK (stem/sdk): methods become typed asks
      writeFileSync(join(dir, 'client.ts'), [
        "import { connect } from 'stem/sdk'",
        'class Counter { count = 0; increment (by: number) { this.count += by; return this.count } }',
        "const counter = connect('http://127.0.0.1:7070').cell<Counter>('counter/counter')",
        'export async function ok (): Promise<number> { return await counter.increment(5) }',
        "export async function wrong (): Promise<string> { return await counter.increment('five') }",
        ''
      ].join('\n'))
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../tsconfig.json', include: ['*.ts'] }))
      const bad = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' })
      assert.equal(bad.status, 2, bad.stdout)
      assert.match(bad.stdout, /bad\.ts.*Type 'Promise<string>' is not assignable to type 'number'/)
      assert.match(bad.stdout, /bad\.ts.*Property 'nope' does not exist on type 'Stem'/)
      assert.match(bad.stdout, /client\.ts\(5,.*Argument of type 'string' is not assignable to parameter of type 'number'/)
      assert.doesNotMatch(bad.stdout, /client\.ts\([1-4],/, 'the correct SDK use type-checks')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  describe('running in a cell runtime behind the gateway', function () {
    let runtime: CellRuntime
    let gateway: Gateway
    let dataDir: string
    let base: string

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'stem-examples-'))
      const owner = await createEd25519Key()
      runtime = createCellRuntime({ dataDir })
      runtime.start()
      const replicas = new Map<string, number>()
      gateway = createGateway({
        backend: {
          // a keyed cell's shards all run here: the runtime picks the key's shard
          ask: async (target, method, args, options) => replyValue(await runtime.askJson(target.key !== undefined ? `${target.app}/${target.cell}/${encodeKey(target.key)}` : `${target.app}/${target.cell}#${target.instance ?? 0}`, method, JSON.stringify(args), { deadline: options.deadline, signal: options.signal })),
          replicas: (app, cell) => replicas.get(`${app}/${cell}`) ?? 0
        }
      })
      for (const example of await loadExamples()) {
        const { app, cells, routes } = example.manifest
        const bundles = await bundleAll(example, owner)
        for (const [cell, spec] of Object.entries(cells)) {
          for (let i = 0; i < spec.replicas; i++) {
            await runtime.transform(`${app}/${cell}#${i}`, bundles.get(cell)!, { owner: owner.publicKey })
          }
          replicas.set(`${app}/${cell}`, spec.replicas)
        }
        gateway.setRoutes(app, routes.map(r => ({ method: r.method, path: r.path, cell: r.cell, cellMethod: r.handler, key: r.key })))
      }
      await gateway.start()
      base = gateway.address()
    })

    after(async () => {
      await gateway?.stop()
      await runtime?.stop()
      rmSync(dataDir, { recursive: true, force: true })
    })

    const http = async (method: string, path: string, body?: unknown): Promise<{ status: number, json: any, location: string | null }> => {
      const res = await fetch(base + path, {
        method,
        headers: body !== undefined ? { 'content-type': 'application/json' } : {},
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(30_000)
      })
      return { status: res.status, json: await res.json(), location: res.headers.get('location') }
    }

    it('counter: GET and POST /count', async () => {
      assert.deepEqual(await http('GET', '/counter/count'), { status: 200, json: { count: 0 }, location: null })
      assert.deepEqual(await http('POST', '/counter/count', { by: 5 }), { status: 200, json: { count: 5 }, location: null })
      assert.deepEqual(await http('POST', '/counter/count'), { status: 200, json: { count: 6 }, location: null })
      assert.equal(await runtime.ask('counter/counter#0', 'increment', [10]).then(r => (r as { count: number }).count), 16)
      const bad = await http('POST', '/counter/count', { by: 'lots' })
      assert.equal(bad.status, 500)
      assert.match(bad.json.error, /by must be a whole number/)
      assert.deepEqual((await http('GET', '/counter/count')).json, { count: 16 })
    })

    it('pipeline: an order goes through pricing and inventory', async () => {
      const before = (await http('GET', '/pipeline/stock')).json
      const placed = await http('POST', '/pipeline/orders', { items: [{ sku: 'apple', qty: 3 }, { sku: 'pear', qty: 1 }] })
      assert.equal(placed.status, 201)
      assert.equal(placed.location, `/pipeline/orders/${placed.json.id as string}`)
      assert.equal(placed.json.total, 3 * 50 + 75)
      assert.deepEqual(placed.json.items.map((l: { sku: string, amount: number }) => [l.sku, l.amount]), [['apple', 150], ['pear', 75]])
      const stock = (await http('GET', '/pipeline/stock')).json
      assert.equal(stock.apple, before.apple - 3)
      assert.equal(stock.pear, before.pear - 1)
      assert.deepEqual((await http('GET', `/pipeline/orders/${placed.json.id as string}`)).json, placed.json)

      // all or nothing: a line out of stock reserves nothing
      const refused = await http('POST', '/pipeline/orders', { items: [{ sku: 'apple', qty: 1 }, { sku: 'fig', qty: 1 }] })
      assert.equal(refused.status, 500)
      assert.match(refused.json.error, /out of stock: fig/)
      assert.deepEqual((await http('GET', '/pipeline/stock')).json, stock)
      const unknown = await http('POST', '/pipeline/orders', { items: [{ sku: 'durian', qty: 1 }] })
      assert.match(unknown.json.error, /unknown sku "durian"/)
      assert.deepEqual(await http('GET', '/pipeline/orders/99'), { status: 404, json: { error: 'no order 99', cell: 'pipeline/order#0', method: 'get' }, location: null })
      assert.equal((await http('POST', '/pipeline/orders', { items: [] })).status, 400)

      await http('POST', '/pipeline/stock', { sku: 'fig', qty: 2 })
      const figs = await http('POST', '/pipeline/orders', { items: [{ sku: 'fig', qty: 2 }] })
      assert.equal(figs.json.total, 420)
      assert.equal((await http('GET', '/pipeline/stock')).json.fig, 0)
    })

    it('carts: one keyed cart per user expires with its reminder after being idle; a change re-arms it', async () => {
      const ann = await http('POST', '/carts/cart/ann/items', { sku: 'fig', qty: 2 })
      assert.equal(ann.status, 200)
      assert.deepEqual(ann.json.items, { fig: 2 })
      assert.ok(ann.json.expiresAt >= Date.now() + 29 * 60 * 1000)
      const bob = await http('POST', '/carts/cart/bob/items?idle=300', { sku: 'pear' })
      assert.deepEqual(bob.json.items, { pear: 1 })
      // a change cancels the previous reminder: one pending per cart
      await http('POST', '/carts/cart/bob/items?idle=300', { sku: 'pear' })
      assert.deepEqual((await http('GET', '/carts/cart/bob')).json.items, { pear: 2 })
      await waitFor(async () => (await http('GET', '/carts/stats')).json.carts === 2, { what: 'the stats cell to count two carts' })
      await waitFor(async () => (await http('GET', '/carts/cart/bob')).status === 404, { what: "bob's cart to expire" })
      await waitFor(async () => (await http('GET', '/carts/stats')).json.expired === 1, { what: 'the stats cell to count the expiry' })
      assert.deepEqual((await http('GET', '/carts/stats')).json, { carts: 1, expired: 1 })
      assert.deepEqual((await http('GET', '/carts/cart/ann')).json.items, { fig: 2 })
      assert.equal((await http('POST', '/carts/cart/ann/items?idle=5', { sku: 'fig' })).status, 400)
      assert.equal((await http('POST', '/carts/cart/ann/items', { qty: 1 })).status, 400)
      // any key is a cart of its own, '__proto__' and 'a#b' too
      assert.deepEqual((await http('POST', '/carts/cart/__proto__/items', { sku: 'fig' })).json.items, { fig: 1 })
      assert.deepEqual((await http('POST', '/carts/cart/a%23b/items', { sku: 'kiwi' })).json, { user: 'a#b', items: { kiwi: 1 }, expiresAt: (await http('GET', '/carts/cart/a%23b')).json.expiresAt })
      assert.equal((await http('GET', `/carts/cart/${'k'.repeat(257)}`)).status, 400)
      assert.equal((await http('GET', '/carts/cart/zed')).status, 404)
    })

    it('greeter-ts: TypeScript with an npm package', async () => {
      assert.deepEqual((await http('GET', '/greeter/hello/Ada%20Lovelace')).json, { message: 'Hello, Ada Lovelace!', slug: 'ada-lovelace', times: 1 })
      assert.equal((await http('GET', '/greeter/hello/%20')).status, 400)
      assert.equal((await http('GET', '/greeter/hello/Ada%20Lovelace?lang=fr')).json.message, 'Bonjour, Ada Lovelace!')
      assert.deepEqual((await http('GET', '/greeter/stats')).json, { 'ada-lovelace': 2 })
    })
  })
})
