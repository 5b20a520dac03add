// Hostile cells: every attack is contained, and a cell of another app (in another cell
// host) keeps answering after each one. Attack code is signed directly (a hostile owner
// can ship any module, not only what our bundler produces).
import { describe, it, before, after, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { signBundle, encodeBundle, decodeBundle } from '../../src/cells/bundle.js'
import type { CellBundle } from '../../src/cells/bundle.js'
import { bundleCode } from '../../src/cells/bundle-build.js'
import { DEFAULT_LIMITS } from '../../src/cells/limits.js'
import type { CellLimits } from '../../src/cells/limits.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { BundleBody, Bundle as BundleMessage } from '../../src/wire/proto/bundle.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, MIB, TempDir } from './helpers.js'

const LIMITS: CellLimits = { memory: 16 * MIB, timeout: 200, mailbox: 100 }

describe('cells: security suite (hostile cells are contained)', function () {
  this.timeout(60_000)
  let owner: PrivateKey
  let runtime: CellRuntime
  let victimCount = 0
  let n = 0
  const tmp = new TempDir()

  const sign = async (address: string, code: string, limits: Partial<CellLimits> = {}): Promise<CellBundle> => {
    const [app, rest] = address.split('/')
    return signBundle({ app, cell: rest.split('#')[0], entry: 'attack.js', code, limits: { ...LIMITS, ...limits } }, owner)
  }
  /** transform a fresh hostile cell (in app `app`, default the shared 'evil' host) and return its address */
  const hostile = async (code: string, app = 'evil', limits: Partial<CellLimits> = {}): Promise<string> => {
    const address = `${app}/a${++n}#0`
    await runtime.transform(address, await sign(address, code, limits), { owner: owner.publicKey })
    return address
  }
  const attack = async (method: string, code: string, app?: string, limits?: Partial<CellLimits>): Promise<unknown> => {
    const address = await hostile(code, app, limits)
    return runtime.ask(address, method)
  }

  before(async () => {
    owner = await createEd25519Key()
    runtime = createCellRuntime({ bounds: { askTimeout: 1500, messageWallTime: 3000 }, heartbeatInterval: 250 })
    runtime.start()
    await runtime.transform('good/counter#0', await sign('good/counter', COUNTER), { owner: owner.publicKey })
  })
  afterEach(async () => {
    // the other app's cell still answers, with its state intact (a flood aimed at it may
    // fill its mailbox for a moment: that is backpressure, so wait for it to drain)
    victimCount++
    const value = await waitFor(async () => {
      try {
        return await runtime.ask('good/counter#0', 'increment', [1])
      } catch (err) {
        if (/mailbox of good\/counter#0 is full/.test((err as Error).message)) return undefined
        throw err
      }
    }, { what: 'the other app\'s cell to answer' })
    assert.equal(value, victimCount)
  })
  after(async () => {
    await runtime.stop()
    tmp.remove()
  })

  // --- reaching the host ---------------------------------------------------------------
  it('1. process is not reachable', async () => {
    assert.equal(await attack('x', 'export default class A { x () { return typeof process } }'), 'undefined')
  })

  it('2. require is not reachable', async () => {
    assert.equal(await attack('x', 'export default class A { x () { return typeof require + typeof module + typeof __dirname } }'), 'undefinedundefinedundefined')
  })

  it('3. dynamic import() of a host module fails', async () => {
    const r = await attack('x', `export default class A { async x () { try { await import('fs'); return 'escaped' } catch (e) { return 'blocked' } } }`)
    assert.equal(r, 'blocked')
  })

  it('4. static import of a host module is refused at load', async () => {
    const address = 'evil/static-import#0'
    await assert.rejects(runtime.transform(address, await sign(address, "import fs from 'fs'\nexport default class A { x () { return fs } }"), { owner: owner.publicKey }),
      /cells cannot import 'fs'/)
  })

  it('5. globalThis holds no host object, timer, WebAssembly, SharedArrayBuffer or Atomics', async () => {
    const found = await attack('x', `export default class A { x () {
      const bad = ['process', 'require', 'module', 'Buffer', 'setTimeout', 'setInterval', 'setImmediate', 'fetch', 'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'ivm', '_ivm', 'global']
      return Object.getOwnPropertyNames(globalThis).filter(k => bad.includes(k))
    } }`)
    assert.deepEqual(found, [])
  })

  it('6. constructor.constructor only reaches the isolate\'s own Function', async () => {
    const r = await attack('x', `export default class A { x () {
      const F = stem.ask.constructor.constructor
      const g = F('return this')()
      const h = this.constructor.constructor('return globalThis')()
      return [typeof g.process, typeof h.require, typeof stem.log.constructor.constructor('try { return process } catch (e) { return e.name }')()]
    } }`)
    assert.deepEqual(r, ['undefined', 'undefined', 'string'])
  })

  it('7. Function and eval run inside the sandbox only', async () => {
    const r = await attack('x', 'export default class A { x () { return [eval("typeof process"), Function("return typeof require")(), (0, eval)("typeof globalThis.process")] } }')
    assert.deepEqual(r, ['undefined', 'undefined', 'undefined'])
  })

  it('8. error stacks and CallSites expose no host frames or objects', async () => {
    const r = await attack('x', `export default class A { x () {
      let frames = []
      Error.prepareStackTrace = (e, cs) => { frames = cs; return 'x' }
      try { stem.tell(Symbol('a'), 'm') } catch (e) { e.stack }
      try { stem.log({ get a () { throw new Error('inner') } }) } catch (e) { e.stack }
      const leaks = frames.map(f => { try { const t = f.getThis(); const fn = f.getFunction(); return (t && t.process) || (fn && fn.constructor('return typeof process')()) } catch { return null } })
      return leaks.filter(l => l && l !== 'undefined').length + ':' + String(new Error('s').stack).includes('node:')
    } }`)
    assert.equal(r, '0:false')
  })

  it('9. the stem object cannot be replaced or modified', async () => {
    const r = await attack('x', `export default class A { x () {
      const out = []
      try { stem.ask = () => 'hijacked'; out.push('assigned') } catch { out.push('frozen') }
      try { globalThis.stem = {}; out.push('replaced') } catch { out.push('readonly') }
      try { delete globalThis.stem; out.push(typeof stem) } catch { out.push('undeletable') }
      return out
    } }`)
    assert.deepEqual(r, ['frozen', 'readonly', 'undeletable'])
  })

  it('10. tampering with its own intrinsics does not fool the dispatcher', async () => {
    const r = await attack('x', `export default class A { n = 1; x () {
      JSON.stringify = () => '{"forged":true}'; Object.keys = () => ['forged']; Array.isArray = () => true
      Promise.prototype.then = function () { return 'hijacked' }
      return { ok: this.n }
    } }`)
    assert.deepEqual(r, { ok: 1 })
  })

  it('11. prototype pollution in results and state never reaches host objects', async () => {
    const address = await hostile(`export default class A { x () {
      Object.prototype.polluted = 'yes'
      this['__proto__polluter'] = 1
      return JSON.parse('{"__proto__": {"admin": true}, "constructor": {"prototype": {"admin": true}}}')
    } }`)
    const r = await runtime.ask(address, 'x') as Record<string, unknown>
    assert.equal(({} as Record<string, unknown>).admin, undefined)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal(Object.getPrototypeOf(r), Object.prototype)
    assert.ok(Object.hasOwn(r, '__proto__'))
    const snap = await runtime.snapshot(address)
    assert.equal(snap.state, '{"__proto__polluter":1}')
  })

  // --- CPU ----------------------------------------------------------------------------
  it('12. an infinite loop is stopped at the CPU limit and the cell restarts', async () => {
    const address = await hostile('export default class A { n = 0; inc () { return ++this.n } loop () { for (;;) {} } }')
    await runtime.ask(address, 'inc')
    await assert.rejects(runtime.ask(address, 'loop'), /crashed: exceeded its CPU time limit of 200 ms/)
    assert.equal(await runtime.ask(address, 'inc'), 2)
  })

  it('13. an infinite loop in an async continuation is stopped', async () => {
    await assert.rejects(attack('x', 'export default class A { async x () { await null; for (;;) {} } }'), /CPU time limit/)
  })

  it('14. an infinite loop after awaiting stem.ask is stopped (CPU counted across the await)', async () => {
    await assert.rejects(attack('x', `export default class A { async x () { await stem.ask('good/counter', 'get'); for (;;) {} } }`), /CPU time limit/)
  })

  it('15. an endless microtask chain is stopped', async () => {
    await assert.rejects(attack('x', 'export default class A { x () { const f = () => { Promise.resolve().then(f) }; f(); return 1 } }'), /CPU time limit/)
  })

  it('16. a constructor that never returns fails the transform, nothing else', async () => {
    await assert.rejects(hostile('export default class A { constructor () { for (;;) {} } }'), /cannot load .*CPU time limit of 1000 ms/)
  })

  it('17. Atomics.wait cannot block: Atomics and SharedArrayBuffer are gone', async () => {
    const r = await attack('x', `export default class A { x () {
      try { const s = new SharedArrayBuffer(8); Atomics.wait(new Int32Array(s), 0, 0); return 'blocked' } catch (e) { return e.name }
    } }`)
    assert.equal(r, 'ReferenceError')
  })

  it('18. a message awaiting forever is ended at the wall-clock bound', async () => {
    await assert.rejects(attack('x', 'export default class A { async x () { await new Promise(() => {}) } }'), /wall-clock limit of 3000 ms/)
  })

  it('19. an ask to itself (deadlock) times out at the pending-ask bound', async () => {
    const address = await hostile('export default class A { async x () { return await stem.ask(stem.self, "y") } y () { return 1 } }')
    await assert.rejects(runtime.ask(address, 'x'), /timed out after 1500 ms/)
    assert.equal(await runtime.ask(address, 'y'), 1)
  })

  // --- memory -------------------------------------------------------------------------
  it('20. new Array(60e6).fill(1) kills its cell host; the node restarts it, other apps keep serving', async () => {
    const crashed: string[] = []
    const onCrash = (e: CustomEvent<{ app: string, reason: string }>): void => { crashed.push(`${e.detail.app}: ${e.detail.reason}`) }
    runtime.addEventListener('host:crashed', onCrash)
    const address = await hostile('export default class A { ok () { return "alive" } bomb () { return new Array(60e6).fill(1).length } }', 'bomb1')
    const pid = runtime.hostPids().get('bomb1')
    await assert.rejects(runtime.ask(address, 'bomb'), /crashed/)
    assert.equal(await runtime.ask('good/counter#0', 'get'), victimCount)
    await waitFor(async () => await runtime.ask(address, 'ok').catch(() => undefined) === 'alive', { what: 'bomb cell restarted' })
    runtime.removeEventListener('host:crashed', onCrash)
    // either V8 aborts the host (out of memory) or the node's RSS watchdog kills it first:
    // which comes first is a race between the two, and both leave the node serving
    assert.equal(crashed.length, 1, crashed.join('; '))
    assert.match(crashed[0], /^bomb1: (was killed by SIGABRT \(V8: out of memory\)|passed its memory limit: RSS \d+ MiB > \d+ MiB)$/)
    assert.notEqual(runtime.hostPids().get('bomb1'), pid)
  })

  it('21. growing arrays past the isolate limit is stopped', async () => {
    await assert.rejects(attack('x', 'export default class A { x () { const a = []; for (;;) a.push(new Array(1e5).fill(Math.random())) } }', 'bomb2'), /crashed/)
  })

  it('22. a string bomb is stopped', async () => {
    await assert.rejects(attack('x', 'export default class A { x () { let s = "xy"; const keep = []; for (;;) { s += s; keep.push(s + Math.random()) } } }', 'bomb3'), /crashed|Invalid string length/)
  })

  it('23. a state that grows past the limits is refused and rolled back', async () => {
    // a generous CPU budget: this attack is about size, and copying 2 MiB is slow on a loaded machine
    const address = await hostile('export default class A { big = ""; grow () { this.big = "x".repeat(2 * 1024 * 1024); return 1 } size () { return this.big.length } }', undefined, { timeout: 2000 })
    await assert.rejects(runtime.ask(address, 'grow'), /state after this message is invalid: state is too large/)
    assert.equal(await runtime.ask(address, 'size'), 0)
  })

  it('24. deep recursion is a clear error, the cell keeps its state', async () => {
    const address = await hostile('export default class A { n = 5; f (d) { return this.f(d + 1) } recurse () { this.n = 0; return this.f(0) } get () { return this.n } }')
    await assert.rejects(runtime.ask(address, 'recurse'), /Maximum call stack size exceeded/)
    assert.equal(await runtime.ask(address, 'get'), 5)
  })

  it('25. a cell that keeps crashing is marked failed, not restarted forever', async () => {
    const failed: string[] = []
    const onFailed = (e: CustomEvent<{ address: string }>): void => { failed.push(e.detail.address) }
    runtime.addEventListener('cell:failed', onFailed)
    const address = await hostile('export default class A { loop () { for (;;) {} } }', 'evil', { timeout: 50 })
    for (let i = 0; i < 5; i++) await assert.rejects(runtime.ask(address, 'loop'), /crashed|has failed/)
    await waitFor(() => failed.includes(address), { what: 'cell failed event' })
    runtime.removeEventListener('cell:failed', onFailed)
    assert.equal(runtime.cell(address)?.status, 'failed')
    await assert.rejects(runtime.ask(address, 'loop'), /has failed/)
  })

  // --- floods and results --------------------------------------------------------------
  it('26. a flood of stem.ask is refused past the pending-ask bound', async () => {
    const r = await attack('x', `export default class A { async x () {
      const ps = []
      for (let i = 0; i < 5000; i++) ps.push(stem.ask('good/counter', 'get').then(() => 'ok', e => e.message))
      const all = await Promise.all(ps)
      return [all.filter(m => m === 'ok').length > 0, all.filter(m => /too many pending asks/.test(m)).length > 0]
    } }`, 'evil', { timeout: 2000 })
    assert.deepEqual(r, [true, true])
  })

  it('27. a flood of stem.tell is cut off', async () => {
    await assert.rejects(attack('x', `export default class A { x () { for (;;) stem.tell('good/counter', 'get') } }`), /too many tells/)
  })

  it('28. a flood of stem.log is capped per message', async () => {
    let logs = 0
    const onLog = (): void => { logs++ }
    runtime.addEventListener('cell:log', onLog)
    assert.equal(await attack('x', 'export default class A { x () { for (let i = 0; i < 1000000; i++) stem.log("spam", i); return 1 } }'), 1)
    const marker = await attack('x', 'export default class A { x () { stem.log("marker"); return 1 } }')
    assert.equal(marker, 1)
    await waitFor(() => logs >= 101)
    runtime.removeEventListener('cell:log', onLog)
    assert.ok(logs <= 101, `${logs} logs`)
  })

  it('29. a huge result is refused', async () => {
    // a generous CPU budget: this attack is about size, and copying 3 MiB is slow on a loaded machine
    await assert.rejects(attack('x', 'export default class A { x () { return "x".repeat(3 * 1024 * 1024) } }', undefined, { timeout: 2000 }), /result is too large/)
  })

  it('30. a cyclic result is refused', async () => {
    await assert.rejects(attack('x', 'export default class A { x () { const o = {}; o.self = o; return o } }'), /result is not JSON-like: cyclic reference at \$.self/)
  })

  it('31. non-clonable results are refused (function, symbol, bigint, Map, NaN)', async () => {
    const address = await hostile(`export default class A {
      f () { return () => 1 } s () { return Symbol('x') } b () { return 10n } m () { return new Map() } n () { return [NaN] } }`)
    await assert.rejects(runtime.ask(address, 'f'), /not JSON-like: function/)
    await assert.rejects(runtime.ask(address, 's'), /not JSON-like: symbol/)
    await assert.rejects(runtime.ask(address, 'b'), /not JSON-like: bigint/)
    await assert.rejects(runtime.ask(address, 'm'), /not JSON-like: class instance/)
    await assert.rejects(runtime.ask(address, 'n'), /not JSON-like: NaN/)
  })

  it('32. getters, toJSON traps and proxies in messages between cells are refused by the sender', async () => {
    const r = await attack('x', `export default class A { async x () {
      const out = []
      for (const arg of [{ get a () { return 1 } }, { toJSON () { return 1 } }, new Proxy({}, { ownKeys: () => ['k'], getOwnPropertyDescriptor: () => ({ get: () => 1, enumerable: true, configurable: true }) })]) {
        try { await stem.ask('good/counter', 'increment', arg); out.push('sent') } catch (e) { out.push(e.message) }
      }
      return out
    } }`)
    assert.deepEqual(r, ['arguments is not JSON-like: accessor property at $[0].a', 'arguments is not JSON-like: function at $[0].toJSON', 'arguments is not JSON-like: accessor property at $[0].k'])
  })

  it('33. getters and toJSON traps in arguments from the node side are refused before sending', async () => {
    await assert.rejects(runtime.ask('good/counter#0', 'increment', [{ get by () { return 1 } }]), /arguments is not JSON-like: accessor property at \$\[0\]\.by/)
    await assert.rejects(runtime.ask('good/counter#0', 'increment', [{ toJSON: () => 1 }]), /not JSON-like: function at \$\[0\]\.toJSON/)
    await assert.rejects(runtime.ask('good/counter#0', 'increment', [new Proxy({}, {})]), /not JSON-like/)
  })

  it('34. an oversized argument is refused', async () => {
    await assert.rejects(attack('x', `export default class A { async x () { return stem.ask('good/counter', 'increment', 'x'.repeat(2 * 1024 * 1024)) } }`), /arguments is too large/)
  })

  it('35. an error object with a trapped message cannot hang the host', async () => {
    await assert.rejects(attack('x', 'export default class A { x () { throw { get message () { for (;;) {} } } } }'), /CPU time limit/)
  })

  // --- bundles ------------------------------------------------------------------------
  it('36. a bundle with a wrong signature is refused', async () => {
    const bundle = await sign('evil/forged', 'export default class A {}')
    const signature = new Uint8Array(bundle.signature)
    signature[0] ^= 0xff
    await assert.rejects(runtime.transform('evil/forged#0', { ...bundle, signature }, { owner: owner.publicKey }), /bad signature/)
  })

  it('37. a bundle whose code does not match its hash is refused', async () => {
    const bundle = await sign('evil/tampered', 'export default class A { x () { return 1 } }')
    const body = BundleBody.decode(bundle.body)
    body.code = new TextEncoder().encode('export default class A { x () { return typeof process } }')
    const bytes = BundleMessage.encode({ body: BundleBody.encode(body), owner: bundle.owner as Uint8Array<ArrayBuffer>, signature: bundle.signature as Uint8Array<ArrayBuffer> })
    assert.throws(() => decodeBundle(bytes), /code does not match its hash/)
    await assert.rejects(runtime.transform('evil/tampered#0', { ...bundle, code: 'export default class A { x () { return 2 } }' }, { owner: owner.publicKey }), /do not match its signed body/)
  })

  it('38. a bundle signed by someone other than the app owner is refused', async () => {
    const attacker = await createEd25519Key()
    const bundle = decodeBundle(encodeBundle(await signBundle({ app: 'good', cell: 'counter', entry: 'x.js', code: 'export default class A { increment () { return -1 } }', limits: DEFAULT_LIMITS }, attacker)))
    await assert.rejects(runtime.transform('good/counter#0', bundle, { owner: owner.publicKey, replace: true }), /not by the app owner/)
  })

  it('39. bundling code that imports fs or child_process fails with a clear error', async () => {
    await assert.rejects(bundleCode(tmp.write('reader.js', "import { readFileSync } from 'fs'\nexport default class R { r () { return readFileSync('/etc/passwd', 'utf8') } }")),
      /reader\.js:1:\d+: reader\.js imports node built-in 'fs': cells cannot use Node APIs\n/)
    await assert.rejects(bundleCode(tmp.write('spawner.js', "import { execSync } from 'child_process'\nexport default class S { s () { return execSync('id') } }")),
      /spawner\.js:1:\d+: spawner\.js imports node built-in 'child_process': cells cannot use Node APIs\n/)
  })

  it('41. a looping message hidden in a batch fails alone; the messages around it are answered once, in order', async () => {
    const crashes: string[] = []
    const onCrash = (e: CustomEvent<{ address: string }>): void => { crashes.push(e.detail.address) }
    runtime.addEventListener('cell:crashed', onCrash)
    const address = await hostile('export default class A { n = 0; inc () { return ++this.n } loop () { for (;;) {} } }')
    const methods = ['inc', 'inc', 'inc', 'inc', 'loop', 'inc', 'inc', 'inc']
    const results = await Promise.allSettled(methods.map(m => runtime.ask(address, m)))
    runtime.removeEventListener('cell:crashed', onCrash)
    assert.deepEqual(results.map(r => r.status === 'fulfilled' ? r.value : 'error'), [1, 2, 3, 4, 'error', 5, 6, 7])
    assert.match((results[4] as PromiseRejectedResult).reason.message, /CPU time limit/)
    // this cell crashed once; a hostile cell of an earlier test may still report its own crash
    // meanwhile on a loaded machine (a full suite run here: 'evil/a34#0' came in this window)
    assert.deepEqual(crashes.filter(a => a === address), [address])
    assert.equal((await runtime.snapshot(address)).state, '{"n":7}')
  })

  it('40. WebAssembly (and so WebAssembly.Memory growth) is unavailable', async () => {
    const r = await attack('x', `export default class A { x () {
      try { const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); m.grow(16384); return 'grew' } catch (e) { return e.name }
    } }`)
    assert.equal(r, 'ReferenceError')
  })

  // --- a message that throws or is refused leaves the state exactly as it was ----------
  it('42. a field added before a throw is rolled back, not persisted by the next message', async () => {
    const address = await hostile('export default class A { n = 1; bad () { this.added = "x"; this.n = 2; throw new Error("no") } inc () { return ++this.n } }')
    await assert.rejects(runtime.ask(address, 'bad'), (err: Error) => err.message === 'no')
    assert.equal((await runtime.snapshot(address)).state, '{"n":1}')
    assert.equal(await runtime.ask(address, 'inc'), 2)
    assert.equal((await runtime.snapshot(address)).state, '{"n":2}')
  })

  it('43. a new field past the state limit is refused and deleted: the cell is not bricked', async () => {
    const address = await hostile('export default class A { n = 0; grow () { this.big = "x".repeat(2 * 1024 * 1024); return 1 } inc () { return ++this.n } }')
    await assert.rejects(runtime.ask(address, 'grow'), /state after this message is invalid: state is too large/)
    assert.equal(await runtime.ask(address, 'inc'), 1)
    assert.equal((await runtime.snapshot(address)).state, '{"n":1}')
  })

  it('44. a frozen instance that cannot be rolled back is rebuilt from its last good state', async () => {
    const address = await hostile('export default class A { n = 1; bad () { this.extra = 1; Object.freeze(this); throw new Error("no") } get () { return this.n } }')
    await assert.rejects(runtime.ask(address, 'bad'), /crashed: its state cannot be rolled back/)
    assert.equal(await runtime.ask(address, 'get'), 1)
    assert.equal((await runtime.snapshot(address)).state, '{"n":1}')
  })

  // --- the host treats everything from the isolate as untrusted bytes -------------------
  it('45. defeating the bootstrap\'s escaping (Symbol.replace/split, exec, index setters) forges no record or state', async () => {
    const address = await hostile(`export default class A { n = 0
      inc () { return ++this.n }
      tamper () {
        RegExp.prototype[Symbol.replace] = function () { return 'forged' }
        String.prototype[Symbol.split] = function () { return ['1', 'inc', '[]'] }
        String.prototype[Symbol.replace] = function () { return 'forged' }
        RegExp.prototype.exec = function () { return null }
        String.prototype.slice = function () { return 'forged' }
        Object.defineProperty(Array.prototype, '0', { set () { throw new Error('setter ran') }, configurable: true })
        Object.prototype.get = function () { return 1 }
        return 'tampered'
      }
      bad () { this.n = 99; throw new Error('a\\0{not json\\x022\\x01o1\\0{"n":1000}') }
      forge () { stem.tell('good/counter\\x01increment\\x01[5]\\x01t', 'get'); return 'sent' }
    }`)
    assert.equal(await runtime.ask(address, 'inc'), 1)
    assert.equal(await runtime.ask(address, 'tamper'), 'tampered')
    await assert.rejects(runtime.ask(address, 'bad'), (err: Error) => err.message === 'a {not json 2 o1 {"n":1000}')
    await assert.rejects(runtime.ask(address, 'forge'), /address and method must be short strings/)
    assert.equal(await runtime.ask(address, 'inc'), 2)
    assert.equal((await runtime.snapshot(address)).state, '{"n":2}')
  })

  it('46. resizable ArrayBuffers are unavailable (their memory is outside the isolate limit)', async () => {
    const r = await attack('x', `export default class A { x () {
      const out = []
      try { const b = new ArrayBuffer(8, { maxByteLength: 1024 * 1024 * 1024 }); b.resize(512 * 1024 * 1024); out.push('grew') } catch (e) { out.push(e.message) }
      try { const B = new Uint8Array(1).buffer.constructor; new B(8, { maxByteLength: 1e9 }); out.push('grew') } catch (e) { out.push(e.message) }
      out.push(typeof ArrayBuffer.prototype.resize, new Uint8Array(1).buffer.constructor === ArrayBuffer)
      class Sub extends ArrayBuffer {}
      out.push(new Sub(8).byteLength, new ArrayBuffer(16).byteLength, new Sub(8) instanceof ArrayBuffer)
      return out
    } }`)
    assert.deepEqual(r, ['resizable ArrayBuffers are not available to cells', 'resizable ArrayBuffers are not available to cells', 'undefined', true, 8, 16, true])
  })

  // --- one app cannot disable another -------------------------------------------------
  it('47. a message that cannot fit the target\'s memory is refused before delivery, with a clear error to the sender', async () => {
    const target = await hostile('export default class T { n = 0; take (x) { this.n++; return x.length } inc () { return ++this.n } }', 'small', { memory: 16 * MIB, timeout: 1000 })
    const r = await attack('x', `export default class A { async x () {
      const big = 'y'.repeat(0.9 * 1024 * 1024)
      const out = []
      for (let i = 0; i < 5; i++) out.push(await stem.ask('${target}', 'take', big).then(() => 'delivered', e => e.message))
      return out
    } }`, 'bigsender', { timeout: 5000 })
    assert.equal((r as string[]).length, 5)
    for (const message of r as string[]) assert.match(message, new RegExp(`^arguments of \\d+ characters of JSON cannot fit the memory of ${target} \\(16 MiB\\): it takes at most 524288$`))
    assert.equal(runtime.cell(target)?.status, 'transformed')
    assert.equal(await runtime.ask(target, 'inc'), 1)
    assert.equal((await runtime.snapshot(target)).state, '{"n":1}')
  })

  it('48. crashes caused by another app\'s messages do not count toward the target\'s failure budget', async () => {
    const target = await hostile('export default class T { n = 3; loop () { for (;;) {} } get () { return this.n } }', 'victim', { timeout: 50 })
    const r = await attack('x', `export default class A { async x () {
      const out = []
      for (let i = 0; i < 7; i++) out.push(await stem.ask('${target}', 'loop').then(() => 'ran', e => /crashed/.test(e.message) ? 'crashed' : e.message))
      return out
    } }`, 'attacker', { timeout: 5000 })
    assert.deepEqual(r, Array(7).fill('crashed'))
    assert.equal(runtime.cell(target)?.status, 'transformed')
    assert.equal(await runtime.ask(target, 'get'), 3)
  })

  it('49. a failed cell shows why and when, and restarts from its last good state', async () => {
    const address = await hostile('export default class A { n = 0; inc () { return ++this.n } loop () { for (;;) {} } }', 'evil', { timeout: 50 })
    assert.equal(await runtime.ask(address, 'inc'), 1)
    assert.equal(await runtime.ask(address, 'inc'), 2)
    const before = Date.now()
    for (let i = 0; i < 5; i++) await assert.rejects(runtime.ask(address, 'loop'), /crashed|has failed/)
    await waitFor(() => runtime.cell(address)?.status === 'failed', { what: 'the cell to fail' })
    const failure = runtime.cell(address)?.failure
    assert.match(failure?.reason ?? '', /^crashed 5 times within 60 s; last: exceeded its CPU time limit of 50 ms$/)
    assert.ok((failure?.at ?? 0) >= before && (failure?.at ?? 0) <= Date.now())
    await assert.rejects(runtime.ask(address, 'inc'), /has failed: crashed 5 times .*stem restart evil\/a\d+ restarts it from its last good state/)
    const info = await runtime.restart(address)
    assert.equal(info.status, 'transformed')
    assert.equal(info.failure, undefined)
    assert.equal((await runtime.snapshot(address)).state, '{"n":2}')
    assert.equal(await runtime.ask(address, 'inc'), 3)
  })
})
