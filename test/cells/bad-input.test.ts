// Bad input: each a clear one-line error to the caller, and the cell unchanged.
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { signBundle } from '../../src/cells/bundle.js'
import type { CellBundle } from '../../src/cells/bundle.js'
import { DEFAULT_LIMITS } from '../../src/cells/limits.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'

const ACCOUNT = `export default class Account {
  balance = 10
  _secret = 'hidden'
  deposit (amount) {
    if (typeof amount !== 'number' || !Number.isFinite(amount)) throw new TypeError('deposit(amount): amount must be a number')
    this.balance += amount
    return this.balance
  }
  halfDone () { this.balance = 0; throw new Error('failed halfway') }
  get () { return this.balance }
  _internal () { return this._secret }
}`

describe('cells: bad input', () => {
  let owner: PrivateKey
  let runtime: CellRuntime
  const address = 'bank/account#0'
  const sign = async (code: string, cell = 'account'): Promise<CellBundle> => signBundle({ app: 'bank', cell, entry: `${cell}.js`, code, limits: DEFAULT_LIMITS }, owner)

  /** the cell's state and version did not move */
  const unchanged = async (): Promise<void> => {
    const snap = await runtime.snapshot(address)
    assert.equal(snap.state, '{"balance":10,"_secret":"hidden"}')
    assert.equal(snap.version, 0)
  }

  before(async () => {
    owner = await createEd25519Key()
    runtime = createCellRuntime()
    runtime.start()
    await runtime.transform(address, await sign(ACCOUNT), { owner: owner.publicKey })
  })
  after(async () => { await runtime.stop() })

  it('unknown method, and names that are not messages', async () => {
    await assert.rejects(runtime.ask(address, 'withdraw', [1]), { message: 'unknown method "withdraw" on bank/account#0' })
    for (const name of ['constructor', '_internal', 'toString', 'hasOwnProperty', 'balance', '__proto__']) {
      await assert.rejects(runtime.ask(address, name), { message: `unknown method ${JSON.stringify(name)} on bank/account#0` })
    }
    await assert.rejects(runtime.ask(address, ''), /invalid method name for bank\/account#0/)
    await unchanged()
  })

  it('wrong argument types: the cell\'s own error, state unchanged', async () => {
    await assert.rejects(runtime.ask(address, 'deposit', ['lots']), { message: 'deposit(amount): amount must be a number' })
    await assert.rejects(runtime.ask(address, 'deposit', [{ amount: 5 }]), /amount must be a number/)
    await unchanged()
  })

  it('a message that throws halfway leaves no half-applied change', async () => {
    await assert.rejects(runtime.ask(address, 'halfDone'), { message: 'failed halfway' })
    await unchanged()
    assert.equal(await runtime.ask(address, 'get'), 10)
  })

  it('non-JSON arguments are refused before they are sent', async () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const cases: Array<[unknown, RegExp]> = [
      [() => 1, /arguments is not JSON-like: function at \$\[0\]/],
      [undefined, /arguments is not JSON-like: undefined at \$\[0\]/],
      [10n, /bigint at \$\[0\]/],
      [NaN, /NaN at \$\[0\]/],
      [Infinity, /Infinity at \$\[0\]/],
      [Symbol('s'), /symbol at \$\[0\]/],
      [new Date(0), /Date at \$\[0\]/],
      [new Map(), /Map at \$\[0\]/],
      [{ nested: [1, { deep: () => 1 }] }, /function at \$\[0\]\.nested\[1\]\.deep/],
      [cyclic, /cyclic reference at \$\[0\]\.self/],
      ['x'.repeat(2 * 1024 * 1024), /arguments is too large/]
    ]
    for (const [arg, error] of cases) await assert.rejects(runtime.ask(address, 'deposit', [arg]), error)
    await unchanged()
  })

  it('arguments that are not a JSON array (from a router) are refused by the cell', async () => {
    await assert.rejects(runtime.askJson(address, 'deposit', '{"amount":1}'), { message: 'arguments must be a JSON array' })
    await assert.rejects(runtime.askJson(address, 'deposit', '[1,'), /JSON/)
    await unchanged()
  })

  it('unknown, invalid and reverted addresses', async () => {
    await assert.rejects(runtime.ask('bank/nothing#0', 'get'), { message: 'no cell bank/nothing#0 on this node' })
    await assert.rejects(runtime.ask('not an address', 'get'), /invalid cell address "not an address": expected app\/cell, app\/cell#i or app\/cell\/<key>/)
    await runtime.transform('bank/temp#0', await sign(ACCOUNT, 'temp'), { owner: owner.publicKey })
    await runtime.revert('bank/temp#0')
    await assert.rejects(runtime.ask('bank/temp#0', 'get'), { message: 'cell bank/temp#0 is reverted: transform it first' })
    assert.throws(() => { runtime.tell('bank/temp#0', 'get') }, /is reverted/)
    await assert.rejects(runtime.revert('bank/temp#0'), /is not transformed/)
  })

  it('transforming with a missing or wrong default export is a clear error; the cell stays as it was', async () => {
    const cases: Array<[string, RegExp]> = [
      ['export class Named {}', /must export a class as default/],
      ['export default function notAClass () {}', /must export a class as default/],
      ['export default { get () { return 1 } }', /must export a class as default/],
      ['export default class {', /cannot load bank\/\w+#0: Unexpected end of input/],
      ['export default class C { constructor () { throw new Error("ctor refuses") } }', /ctor refuses/]
    ]
    for (const [code, error] of cases) {
      await assert.rejects(runtime.transform('bank/temp#0', await sign(code, 'temp'), { owner: owner.publicKey }), error)
      assert.equal(runtime.cell('bank/temp#0')?.status, 'reverted')
      // as an upgrade of a running cell: the old code keeps serving
      await assert.rejects(runtime.transform(address, await sign(code), { owner: owner.publicKey, replace: true }), error)
      assert.equal(await runtime.ask(address, 'get'), 10)
    }
    await unchanged()
  })

  it('invalid limits and state are refused before anything starts', async () => {
    await assert.rejects(runtime.transform('bank/temp#0', await sign(ACCOUNT, 'temp'), { owner: owner.publicKey, limits: { ...DEFAULT_LIMITS, timeout: 0 } }), /limit timeout must be 1..600000 ms, got 0/)
    await assert.rejects(runtime.transform('bank/temp#0', await sign(ACCOUNT, 'temp'), { owner: owner.publicKey, state: '{"balance":' }), /state is not valid JSON text/)
    assert.equal(runtime.cell('bank/temp#0')?.status, 'reverted')
  })
})
