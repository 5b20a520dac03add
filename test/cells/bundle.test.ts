import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { bundleAddress, decodeBundle, encodeBundle, verifyBundle, signBundle, MAX_BUNDLE_BYTES } from '../../src/cells/bundle.js'
import { buildBundle } from '../../src/cells/bundle-build.js'
import { Bundle as BundleMessage, BundleBody } from '../../src/wire/proto/bundle.js'
import { DEFAULT_LIMITS } from '../../src/cells/limits.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { COUNTER, TempDir } from './helpers.js'

describe('cells: bundles', () => {
  let owner: PrivateKey
  let dir: TempDir

  before(async () => {
    owner = await createEd25519Key()
    dir = new TempDir()
  })
  after(() => { dir.remove() })

  const build = async (source: string, file = 'counter.js'): Promise<ReturnType<typeof buildBundle>> =>
    buildBundle({ entry: dir.write(file, source), app: 'shop', cell: 'counter', limits: DEFAULT_LIMITS, owner })

  it('builds one ESM module, content-addressed by the sha256 of its code, owner, app and cell, signed by the owner', async () => {
    const bundle = await build(COUNTER)
    assert.match(bundle.code, /export\s*\{[^}]*default/)
    assert.equal(bundle.hash, Buffer.from(bundleAddress(bundle.owner, 'shop', 'counter', new TextEncoder().encode(bundle.code))).toString('hex'))
    // the same code for another cell is another bundle
    const other = await buildBundle({ entry: dir.write('counter.js', COUNTER), app: 'tally', cell: 'counter', limits: DEFAULT_LIMITS, owner })
    assert.equal(other.code, bundle.code)
    assert.notEqual(other.hash, bundle.hash)
    assert.deepEqual(bundle.limits, DEFAULT_LIMITS)
    await verifyBundle(bundle, owner.publicKey)
    const decoded = decodeBundle(encodeBundle(bundle))
    assert.equal(decoded.hash, bundle.hash)
    assert.equal(decoded.code, bundle.code)
    assert.equal(decoded.entry, 'counter.js')
    await verifyBundle(decoded, owner.publicKey)
  })

  it('inlines npm imports and compiles TypeScript', async () => {
    dir.write('node_modules/tiny-add/package.json', JSON.stringify({ name: 'tiny-add', version: '1.0.0', type: 'module', main: 'index.js' }))
    dir.write('node_modules/tiny-add/index.js', 'export function add (a, b) { return a + b }\n')
    const bundle = await build(`import { add } from 'tiny-add'
      export default class Adder { total: number = 0; add (n: number): number { this.total = add(this.total, n); return this.total } }`, 'adder.ts')
    assert.doesNotMatch(bundle.code, /from\s*['"]tiny-add['"]/)
    assert.match(bundle.code, /function add/)
  })

  it('refuses a Node built-in import, naming the file and the module', async () => {
    // file:line:column of the import first, then the source line and a caret
    await assert.rejects(build("import { readFileSync } from 'fs'\nexport default class C { x () { return readFileSync } }"),
      /\/\S+\/counter\.js:1:30: counter\.js imports node built-in 'fs': cells cannot use Node APIs\n {4}1 \| import \{ readFileSync \} from 'fs'\n {37}\^$/)
    await assert.rejects(build("import cp from 'node:child_process'\nexport default class C { x () { return cp } }", 'spawner.js'),
      /spawner\.js:1:16: spawner\.js imports node built-in 'child_process': cells cannot use Node APIs\n/)
  })

  it('reports a syntax error with file:line:column, the source line and a caret', async () => {
    await assert.rejects(build('export default class C {\n  x () {\n    return (1 +\n  }\n}'), /counter\.js:4:3: Unexpected "}"\n {4}4 \| {3}}\n {10}\^$/)
  })

  it('refuses malformed, truncated and oversized bytes', () => {
    assert.throws(() => decodeBundle(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])), /malformed bundle/)
    assert.throws(() => decodeBundle(new Uint8Array(0)), /malformed bundle/)
    assert.throws(() => decodeBundle(new Uint8Array(MAX_BUNDLE_BYTES + 1)), /bundle too large/)
  })

  it('refuses a truncated encoding', async () => {
    const bytes = encodeBundle(await build(COUNTER))
    for (const cut of [1, 10, bytes.length >> 1, bytes.length - 1]) {
      assert.throws(() => decodeBundle(bytes.subarray(0, cut)), /malformed bundle|missing|hash|code/)
    }
  })

  it('refuses a body whose code does not match its hash (tampered code)', async () => {
    const bundle = await build(COUNTER)
    const body = BundleBody.decode(bundle.body)
    body.code = new TextEncoder().encode(bundle.code.replace('this.count += by', 'this.count -= by'))
    const tampered = BundleMessage.encode({ body: BundleBody.encode(body), owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: bundle.signature as Uint8Array<ArrayBuffer> })
    assert.throws(() => decodeBundle(tampered), /code does not match its hash/)
  })

  it('refuses a re-hashed tampered body: the signature no longer verifies', async () => {
    const bundle = await build(COUNTER)
    const body = BundleBody.decode(bundle.body)
    body.code = new TextEncoder().encode(bundle.code.replace('this.count += by', 'this.count -= by'))
    body.hash = bundleAddress(bundle.owner, body.app, body.cell, body.code)
    const tampered = BundleMessage.encode({ body: BundleBody.encode(body), owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: bundle.signature as Uint8Array<ArrayBuffer> })
    const decoded = decodeBundle(tampered)
    await assert.rejects(verifyBundle(decoded, owner.publicKey), { message: 'bundle shop/counter: bad signature' })
  })

  it('gives the same code built for two cells, two apps or two owners different addresses', async () => {
    const other = await createEd25519Key()
    const init = { app: 'shop', cell: 'counter', entry: 'counter.js', code: COUNTER, limits: DEFAULT_LIMITS }
    const hashes = await Promise.all([
      signBundle(init, owner),
      signBundle({ ...init, cell: 'counter2' }, owner),
      signBundle({ ...init, app: 'shop2' }, owner),
      signBundle(init, other)
    ].map(async b => (await b).hash))
    assert.equal(new Set(hashes).size, 4)
    // and the address is stable: the same code for the same cell of the same owner
    assert.equal((await signBundle({ ...init, created: 1 }, owner)).hash, hashes[0])
  })

  it('refuses a bundle that claims the address of the same code built for another cell', async () => {
    const bundle = await build(COUNTER)
    const body = BundleBody.decode(bundle.body)
    body.cell = 'other'
    const moved = BundleMessage.encode({ body: BundleBody.encode(body), owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: bundle.signature as Uint8Array<ArrayBuffer> })
    assert.throws(() => decodeBundle(moved), /code does not match its hash/)
  })

  it('refuses a bundle forged by another key, even if self-consistent', async () => {
    const attacker = await createEd25519Key()
    const forged = await signBundle({ app: 'shop', cell: 'counter', entry: 'counter.js', code: COUNTER, limits: DEFAULT_LIMITS }, attacker)
    await verifyBundle(forged, attacker.publicKey)
    await assert.rejects(verifyBundle(decodeBundle(encodeBundle(forged)), owner.publicKey), /not by the app owner/)
  })

  it('refuses a bundle whose in-memory fields differ from its signed body', async () => {
    const bundle = await build(COUNTER)
    await assert.rejects(verifyBundle({ ...bundle, code: bundle.code + '\n//x' }, owner.publicKey), /do not match its signed body/)
    await assert.rejects(verifyBundle({ ...bundle, limits: { ...bundle.limits, memory: bundle.limits.memory * 4 } }, owner.publicKey), /do not match its signed body/)
    const signature = new Uint8Array(bundle.signature)
    signature[3] ^= 1
    await assert.rejects(verifyBundle({ ...bundle, signature }, owner.publicKey), /bad signature/)
  })

  it('refuses a missing signature or owner, bad names and bad limits', async () => {
    const bundle = await build(COUNTER)
    assert.throws(() => decodeBundle(BundleMessage.encode({ body: bundle.body as Uint8Array<ArrayBuffer>, owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: new Uint8Array(0) })), /missing signature/)
    assert.throws(() => decodeBundle(BundleMessage.encode({ body: bundle.body as Uint8Array<ArrayBuffer>, owner: new Uint8Array(0), signature: bundle.signature as Uint8Array<ArrayBuffer> })), /missing owner/)
    const body = BundleBody.decode(bundle.body)
    const reencode = (b: BundleBody): Uint8Array => BundleMessage.encode({ body: BundleBody.encode(b), owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: bundle.signature as Uint8Array<ArrayBuffer> })
    assert.throws(() => decodeBundle(reencode({ ...body, app: '../etc' })), /app name/)
    assert.throws(() => decodeBundle(reencode({ ...body, limits: { memory: 1n, timeout: 1, mailbox: 1 } })), /limit memory/)
    assert.throws(() => decodeBundle(reencode({ ...body, limits: undefined })), /missing limits/)
    await assert.rejects(signBundle({ app: 'shop', cell: 'c', entry: 'c.js', code: 'x', limits: { ...DEFAULT_LIMITS, mailbox: 0 } }, owner), /limit mailbox/)
  })

  it('a replayed bundle decodes to the same content address (idempotent)', async () => {
    const bytes = encodeBundle(await build(COUNTER))
    const first = decodeBundle(bytes)
    const again = decodeBundle(Uint8Array.from(bytes))
    assert.equal(first.hash, again.hash)
    await verifyBundle(again, owner.publicKey)
  })
})
