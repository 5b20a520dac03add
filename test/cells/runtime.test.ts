import { describe, it, before, after, beforeEach, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import type { CellRouter } from '../../src/cells/router.js'
import { waitFor } from '../support/wait.js'
import { COUNTER, createBundler, processGone, MIB } from './helpers.js'
import { RECORD_METHOD } from '../../src/cells/streams/partition.js'
import type { Bundler } from './helpers.js'

describe('cells: runtime lifecycle and messaging', function () {
  let b: Bundler
  let runtime: CellRuntime
  const events: Array<{ type: string, address?: string, reason?: string }> = []

  before(async () => { b = await createBundler() })
  after(() => { b.dir.remove() })
  beforeEach(() => {
    events.length = 0
    runtime = createCellRuntime({ dataDir: b.dir.path, heartbeatInterval: 200 })
    for (const type of ['cell:started', 'cell:crashed', 'cell:restarted', 'cell:failed', 'cell:reverted', 'host:crashed', 'host:restarted'] as const) {
      runtime.addEventListener(type, e => { events.push({ type, address: (e.detail as { address?: string }).address, reason: e.detail.reason }) })
    }
    runtime.start()
  })
  afterEach(async () => { await runtime.stop() })

  it('turns a stem cell into code, reverts it, and transforms it into other code', async () => {
    assert.equal(runtime.createStem('shop/counter#0').status, 'stem')
    await assert.rejects(runtime.ask('shop/counter#0', 'get'), /blank stem cell/)
    const counter = await b.bundle('shop/counter', COUNTER)
    const info = await runtime.transform('shop/counter#0', counter, { owner: b.owner.publicKey })
    assert.equal(info.status, 'transformed')
    assert.equal(await runtime.ask('shop/counter#0', 'increment', [5]), 5)
    assert.equal(await runtime.ask('shop/counter#0', 'get'), 5)
    await assert.rejects(runtime.transform('shop/counter#0', counter, { owner: b.owner.publicKey }), /already transformed: revert it first or ask for replace/)
    await runtime.revert('shop/counter#0')
    assert.equal(runtime.cell('shop/counter#0')?.status, 'reverted')
    await assert.rejects(runtime.ask('shop/counter#0', 'get'), /is reverted/)
    const greeter = await b.bundle('shop/counter', 'export default class G { greet (n) { return `hello ${n}` } }')
    await runtime.transform('shop/counter#0', greeter, { owner: b.owner.publicKey })
    assert.equal(await runtime.ask('shop/counter#0', 'greet', ['ann']), 'hello ann')
    await assert.rejects(runtime.ask('shop/counter#0', 'get'), /unknown method "get"/)
    assert.deepEqual(events.map(e => e.type), ['cell:started', 'cell:reverted', 'cell:started'])
  })

  it('runs cells in a child process started with --no-node-snapshot, never in the node', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    const pid = runtime.hostPids().get('shop') as number
    assert.notEqual(pid, process.pid)
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    assert.ok(argv.includes('--no-node-snapshot'), argv.join(' '))
    assert.ok(argv.some(a => a.endsWith(join('cells', 'host', 'main.js'))), argv.join(' '))
  })

  it('refuses a bundle for another cell or signed by someone else', async () => {
    const counter = await b.bundle('shop/counter', COUNTER)
    await assert.rejects(runtime.transform('shop/other#0', counter, { owner: b.owner.publicKey }), /cannot transform cell shop\/other#0/)
    const stranger = await createBundler()
    await assert.rejects(runtime.transform('shop/counter#0', counter, { owner: stranger.owner.publicKey }), /not by the app owner/)
    stranger.dir.remove()
    assert.equal(runtime.cell('shop/counter#0'), undefined)
  })

  it('replace upgrades the code and keeps the state; a failing upgrade keeps the old code', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await runtime.ask('shop/counter#0', 'increment', [3])
    const v2 = await b.bundle('shop/counter', 'export default class C2 { count = 0; get () { return this.count * 100 } }')
    await runtime.transform('shop/counter#0', v2, { owner: b.owner.publicKey, replace: true })
    assert.equal(await runtime.ask('shop/counter#0', 'get'), 300)
    const broken = await b.bundle('shop/counter', 'throw new Error("boom at load")\nexport default class X {}')
    await assert.rejects(runtime.transform('shop/counter#0', broken, { owner: b.owner.publicKey, replace: true }), /boom at load.*kept the previous code/)
    assert.equal(await runtime.ask('shop/counter#0', 'get'), 300)
    assert.equal(runtime.cell('shop/counter#0')?.hash, v2.hash)
  })

  it('a replace that hands in a state (a promotion onto a node where a deposed primary still runs) starts from that state, not the running one', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await runtime.ask('shop/counter#0', 'increment', [19])
    // the clone held here has the acknowledged state 20 at version 20: the stale 19 must not survive the promotion
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey, state: '{"count":20}', version: 20, replace: true })
    assert.equal(await runtime.ask('shop/counter#0', 'get'), 20)
    assert.equal(runtime.cell('shop/counter#0')?.version, 20)
    assert.equal(await runtime.ask('shop/counter#0', 'increment', [1]), 21)
  })

  it('a cell transformed with servesFrom loads at once but answers nothing until it settles (a promoted clone during the old primary\'s lease)', async () => {
    const logs: string[] = []
    runtime.addEventListener('cell:log', e => { logs.push(e.detail.text) })
    let open = (): void => {}
    const servesFrom = new Promise<void>(resolve => { open = resolve })
    let done = false
    const transformed = runtime.transform('shop/counter#0', await b.bundle('shop/counter', `export default class C {
      count = 0
      constructor () { stem.log('loaded') }
      increment (n = 1) { return this.count += n } }`), { owner: b.owner.publicKey, state: '{"count":5}', version: 5, servesFrom })
    void transformed.then(() => { done = true })
    await waitFor(() => logs.includes('loaded'), { what: 'the cell to load while it may not serve' })
    assert.equal(done, false)
    await assert.rejects(runtime.ask('shop/counter#0', 'increment', [1]), /blank stem cell|not transformed/)
    open()
    await transformed
    assert.equal(await runtime.ask('shop/counter#0', 'increment', [1]), 6)
  })

  it('starts from a given state and reports snapshots with a version counter', async () => {
    const snapshots: Array<{ state: string, version: number }> = []
    runtime.addEventListener('cell:snapshot', e => { snapshots.push({ state: e.detail.state, version: e.detail.version }) })
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey, state: '{"count":40}', version: 7 })
    assert.equal(await runtime.ask('shop/counter#0', 'increment', [2]), 42)
    await waitFor(() => snapshots.some(s => s.state === '{"count":42}'))
    const last = snapshots[snapshots.length - 1]
    assert.equal(last.version, 8)
    assert.deepEqual(await runtime.snapshot('shop/counter#0'), { address: 'shop/counter#0', hash: runtime.cell('shop/counter#0')?.hash, state: '{"count":42}', version: 8 })
    // reads do not change the state, so no new version
    await runtime.ask('shop/counter#0', 'get')
    assert.equal((await runtime.snapshot('shop/counter#0')).version, 8)
    await assert.rejects(runtime.transform('shop/other#0', await b.bundle('shop/other', COUNTER), { owner: b.owner.publicKey, state: '[1]' }), /JSON text of an object/)
  })

  it('an ask with a message key runs once: the snapshot of the state it produced carries its result, and a cell transformed from that snapshot answers the retry with it', async () => {
    const snapshots: Array<{ state: string, version: number, replies: string }> = []
    const gatedRuntime = createCellRuntime({ replyGate: async () => {} })
    gatedRuntime.addEventListener('cell:snapshot', e => { snapshots.push(e.detail) })
    gatedRuntime.start()
    try {
      const counter = await b.bundle('shop/counter', COUNTER)
      await gatedRuntime.transform('shop/counter#0', counter, { owner: b.owner.publicKey })
      const key = 'peer-a/00112233445566778899aabbccddeeff'
      // concurrent and later retries get the one result
      assert.deepEqual(await Promise.all([
        gatedRuntime.ask('shop/counter#0', 'increment', [3], { messageKey: key }),
        gatedRuntime.ask('shop/counter#0', 'increment', [3], { messageKey: key })
      ]), [3, 3])
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'increment', [3], { messageKey: key }), 3)
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'increment', [3], { messageKey: 'peer-b/00112233445566778899aabbccddeeff' }), 6)
      assert.ok(gatedRuntime.dedupeHits >= 2)
      // the first snapshot with the state the keyed ask produced already holds its result
      const first = snapshots.find(s => s.state === '{"count":3}')
      assert.deepEqual((JSON.parse(first?.replies ?? '[]') as unknown[][]).map(e => e[2]), ['3'])
      // a promotion: another cell from that snapshot answers the retry without running it
      const last = snapshots[snapshots.length - 1]
      await gatedRuntime.transform('shop/counter#1', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey, state: last.state, version: last.version, replies: last.replies })
      assert.equal(await gatedRuntime.ask('shop/counter#1', 'increment', [3], { messageKey: key }), 3)
      assert.equal(await gatedRuntime.ask('shop/counter#1', 'get'), 6)
      await assert.rejects(gatedRuntime.transform('shop/counter#2', counter, { owner: b.owner.publicKey, state: last.state, replies: '[["k",1' }), /cannot transform shop\/counter#2: reply window is not JSON/)
    } finally {
      await gatedRuntime.stop()
    }
  })

  it('an ask with a message key that outlives its deadline still runs once: a retry joins it and gets its result', async () => {
    const slow = await b.bundle('shop/slow', 'export default class S { n = 0; work (ms) { const end = Date.now() + ms; while (Date.now() < end) {} return ++this.n } get () { return this.n } }')
    await runtime.transform('shop/slow#0', slow, { owner: b.owner.publicKey })
    const key = 'peer-a/0123456789abcdef0123456789abcdef'
    // two messages keep the cell busy for 0.9 s (one message at a time): the keyed ask waits
    // behind them, and its caller gives up after 100 ms while the host still holds it
    const busy = [runtime.ask('shop/slow#0', 'work', [450]), runtime.ask('shop/slow#0', 'work', [450])]
    await assert.rejects(runtime.ask('shop/slow#0', 'work', [10], { messageKey: key, deadline: Date.now() + 100 }), /timed out/)
    // the retry (same key) must not run it again beside the first try
    assert.equal(await runtime.ask('shop/slow#0', 'work', [10], { messageKey: key }), 3)
    assert.deepEqual(await Promise.all(busy), [1, 2])
    assert.equal(await runtime.ask('shop/slow#0', 'get'), 3)
    // and a retry after it settled gets the recorded result
    assert.equal(await runtime.ask('shop/slow#0', 'work', [10], { messageKey: key }), 3)
    assert.equal(await runtime.ask('shop/slow#0', 'get'), 3)
  })

  it('a reply gate holds results until the state they saw is acknowledged (durability hook)', async () => {
    const gated: Array<{ version: number, release: () => void }> = []
    const reads: string[] = []
    const gatedRuntime = createCellRuntime({
      replyGate: async (address, version, read) => {
        if (read === true) { reads.push(`${address} v${version}`); return }
        const { promise, resolve } = Promise.withResolvers<void>()
        gated.push({ version, release: resolve })
        await promise
      }
    })
    gatedRuntime.start()
    try {
      await gatedRuntime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
      let answered = false
      const first = gatedRuntime.ask('shop/counter#0', 'increment', [4]).then(v => { answered = true; return v })
      await waitFor(() => gated.length === 1)
      assert.equal(gated[0].version, 1)
      assert.equal(answered, false)
      gated[0].release()
      assert.equal(await first, 4)
      // nothing new to protect: the gate only fences the read (no wait for a clone); an error passes no gate
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'get'), 4)
      await assert.rejects(gatedRuntime.ask('shop/counter#0', 'nope'), /unknown method/)
      assert.equal(gated.length, 1)
      assert.deepEqual(reads, ['shop/counter#0 v1'])
      // a promoted clone's state passed the gate where it was produced: reads answer at
      // once (the new clones may not be there yet); the next change waits for the gate
      await gatedRuntime.transform('shop/promoted#0', await b.bundle('shop/promoted', COUNTER), { owner: b.owner.publicKey, state: '{"count":30}', version: 5 })
      assert.equal(await gatedRuntime.ask('shop/promoted#0', 'get'), 30)
      assert.equal(gated.length, 1)
      assert.deepEqual(reads, ['shop/counter#0 v1', 'shop/promoted#0 v5'])
      const change = gatedRuntime.ask('shop/promoted#0', 'increment', [1])
      await waitFor(() => gated.length === 2)
      assert.equal(gated[1].version, 6)
      gated[1].release()
      assert.equal(await change, 31)
    } finally {
      await gatedRuntime.stop()
    }
  })

  it('a read the reply gate refuses (a deposed primary past its lease) fails as not safe, and a change still runs once', async () => {
    let deposed = false
    const gatedRuntime = createCellRuntime({
      replyGate: async (address, version, read) => { if (read === true && deposed) throw new Error(`the announcement places the primary of ${address} on peer-b`) }
    })
    gatedRuntime.start()
    try {
      await gatedRuntime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'increment', [2]), 2)
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'get'), 2)
      deposed = true
      await assert.rejects(gatedRuntime.ask('shop/counter#0', 'get'), /state of shop\/counter#0 is not safe yet: the announcement places the primary of shop\/counter#0 on peer-b/)
      deposed = false
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'get'), 2)
    } finally {
      await gatedRuntime.stop()
    }
  })

  it('a retry of an ask whose reply gate failed waits for the gate, and does not run again', async () => {
    const gated: Array<{ version: number, settle: (ok: boolean) => void }> = []
    const gatedRuntime = createCellRuntime({
      replyGate: async (address, version, read) => {
        if (read === true) return
        const { promise, resolve, reject } = Promise.withResolvers<void>()
        gated.push({ version, settle: ok => { if (ok) resolve(); else reject(new Error('no clone took its state')) } })
        await promise
      }
    })
    gatedRuntime.start()
    try {
      await gatedRuntime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
      const key = 'peer-a/00112233445566778899aabbccddeeff'
      const first = gatedRuntime.ask('shop/counter#0', 'increment', [5], { messageKey: key })
      await waitFor(() => gated.length === 1)
      gated[0].settle(false)
      await assert.rejects(first, /not safe yet/)
      // the change ran and its result is recorded, but its state is not on a clone yet:
      // the retry is answered from the window only once the gate lets it
      let answered = false
      const retry = gatedRuntime.ask('shop/counter#0', 'increment', [5], { messageKey: key }).then(v => { answered = true; return v })
      await waitFor(() => gated.length === 2, { what: 'the retry to wait for the gate' })
      assert.equal(answered, false)
      gated[1].settle(true)
      assert.equal(await retry, 5)
      assert.equal(await gatedRuntime.ask('shop/counter#0', 'get'), 5, 'applied once')
    } finally {
      await gatedRuntime.stop()
    }
  })

  it('with a reply gate, an ask between two cells of one host waits for the gate of the cell asked', async () => {
    const gated: Array<{ address: string, version: number, release: () => void }> = []
    const gatedRuntime = createCellRuntime({
      replyGate: async (address, version, read) => {
        if (read === true) return
        const { promise, resolve } = Promise.withResolvers<void>()
        gated.push({ address, version, release: resolve })
        await promise
      }
    })
    gatedRuntime.start()
    try {
      await gatedRuntime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
      await gatedRuntime.transform('shop/front#0', await b.bundle('shop/front', `export default class Front {
        async add (n) { return await stem.ask('shop/counter#0', 'increment', n) } }`), { owner: b.owner.publicKey })
      let answered = false
      const sum = gatedRuntime.ask('shop/front#0', 'add', [3]).then(v => { answered = true; return v })
      // the counter's new state must reach its clone before the front cell sees the answer
      await waitFor(() => gated.length === 1, { what: 'the counter\'s answer to wait for the gate' })
      assert.equal(gated[0].address, 'shop/counter#0')
      assert.equal(answered, false)
      gated[0].release()
      assert.equal(await sum, 3)
    } finally {
      await gatedRuntime.stop()
    }
  })

  it('persists the last state to the data dir (atomic file) and loads it back', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await runtime.ask('shop/counter#0', 'increment', [9])
    const file = join(b.dir.path, 'cells', encodeURIComponent('shop/counter#0') + '.json')
    await waitFor(() => existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).state === '{"count":9}', { what: 'state file' })
    const loaded = await runtime.loadState('shop/counter#0')
    assert.equal(loaded?.state, '{"count":9}')
    await runtime.revert('shop/counter#0')
    assert.equal(existsSync(file), false)
  })

  it('cells ask each other (inside one cell host and across apps through the router)', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await runtime.transform('shop/other#0', await b.bundle('shop/other', COUNTER), { owner: b.owner.publicKey })
    await runtime.transform('bank/vault#0', await b.bundle('bank/vault', COUNTER), { owner: b.owner.publicKey })
    await runtime.ask('shop/other', 'increment', [10])
    await runtime.ask('bank/vault', 'increment', [100])
    await runtime.ask('shop/counter', 'increment', [1])
    assert.equal(await runtime.ask('shop/counter#0', 'both', ['shop/other']), 11)
    assert.equal(await runtime.ask('shop/counter#0', 'both', ['bank/vault#0']), 101)
    await assert.rejects(runtime.ask('shop/counter#0', 'both', ['nowhere/cell']), /no cell nowhere\/cell on this node/)
    assert.notEqual(runtime.hostPids().get('shop'), runtime.hostPids().get('bank'))
    // two hosts' base footprint + three 32 MiB cells with 3× headroom
    assert.equal(runtime.reservedMemory(), 2 * 192 * MIB + 3 * 3 * 32 * MIB)
  })

  it('a pluggable router receives asks to addresses outside the cell host', async () => {
    const seen: string[] = []
    const router: CellRouter = {
      ask: async (address, method, argsJson, options) => { seen.push(`${options.from}->${address}.${method}${argsJson}`); return '"remote"' },
      tell: (address, method, argsJson, options) => { seen.push(`tell ${options.from}->${address}.${method}${argsJson}`) }
    }
    runtime.setRouter(router)
    await runtime.transform('shop/caller#0', await b.bundle('shop/caller', `export default class C {
      async go () { stem.tell('far/away', 'poke', 1); return await stem.ask('far/away#2', 'hello', 'x', 2) } }`), { owner: b.owner.publicKey })
    assert.equal(await runtime.ask('shop/caller#0', 'go'), 'remote')
    await waitFor(() => seen.length === 2)
    assert.deepEqual(seen.sort(), ['shop/caller#0->far/away#2.hello["x",2]', 'tell shop/caller#0->far/away.poke[1]'])
  })

  it('asks and tells a synchronous message makes in its microtasks still leave (after its reply)', async () => {
    const seen: string[] = []
    runtime.setRouter({
      ask: async (address, method) => { seen.push(`ask ${address}.${method}`); return '1' },
      tell: (address, method) => { seen.push(`tell ${address}.${method}`) }
    })
    await runtime.transform('shop/later#0', await b.bundle('shop/later', `export default class L {
      n = 0
      go () { this.n++; Promise.resolve().then(() => { stem.tell('far/away', 'poke'); stem.ask('far/away', 'hello').then(v => { this.n += v }) }); return this.n }
      get () { return this.n } }`), { owner: b.owner.publicKey })
    assert.equal(await runtime.ask('shop/later#0', 'go'), 1)
    await waitFor(() => seen.length === 2, { what: 'the microtasks\' tell and ask' })
    assert.deepEqual(seen.sort(), ['ask far/away.hello', 'tell far/away.poke'])
    // the answer to that ask reached the cell
    await waitFor(async () => await runtime.ask('shop/later#0', 'get') === 2, { what: 'the answer delivered' })
  })

  it('stem.log reaches the node tagged with the cell address; stem.self and stem.now work', async () => {
    const logs: string[] = []
    runtime.addEventListener('cell:log', e => { logs.push(`${e.detail.address}: ${e.detail.text}`) })
    await runtime.transform('shop/logger#0', await b.bundle('shop/logger', `export default class L {
      hi () { stem.log('hello', { a: 1 }, 2); return [stem.self, typeof stem.now()] } }`), { owner: b.owner.publicKey })
    assert.deepEqual(await runtime.ask('shop/logger#0', 'hi'), ['shop/logger#0', 'number'])
    await waitFor(() => logs.includes('shop/logger#0: hello {"a":1} 2'))
  })

  it('processes one message at a time and refuses senders when the mailbox is full', async () => {
    await runtime.transform('shop/slow#0', await b.bundle('shop/slow', `export default class S {
      log = []
      async step (i) { this.log.push('start' + i); await stem.ask('shop/slow-peer', 'echo', i); this.log.push('end' + i); return i }
      get () { return this.log } }`, { mailbox: 3 }), { owner: b.owner.publicKey })
    await runtime.transform('shop/slow-peer#0', await b.bundle('shop/slow-peer', 'export default class P { echo (i) { return i } }'), { owner: b.owner.publicKey })
    const results = await Promise.allSettled([0, 1, 2, 3, 4].map(i => runtime.ask('shop/slow#0', 'step', [i])))
    assert.deepEqual(results.map(r => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'])
    assert.match((results[3] as PromiseRejectedResult).reason.message, /mailbox of shop\/slow#0 is full \(3 messages\)/)
    assert.deepEqual(await runtime.ask('shop/slow#0', 'get'), ['start0', 'end0', 'start1', 'end1', 'start2', 'end2'])
  })

  it('tells count against the mailbox until the host reports them done, then make room again', async () => {
    await runtime.transform('shop/told#0', await b.bundle('shop/told', `export default class T {
      n = 0
      add () { this.n++ }
      get () { return this.n } }`, { mailbox: 5 }), { owner: b.owner.publicKey })
    // a burst in one synchronous run: nothing has been reported done yet
    for (let i = 0; i < 5; i++) runtime.tell('shop/told#0', 'add')
    assert.equal(runtime.cell('shop/told#0')?.inflight, 5)
    assert.throws(() => { runtime.tell('shop/told#0', 'add') }, /mailbox of shop\/told#0 is full \(5 messages\)/)
    await waitFor(() => runtime.cell('shop/told#0')?.inflight === 0, { what: 'the host to report the tells done' })
    runtime.tell('shop/told#0', 'add')
    await waitFor(async () => await runtime.ask('shop/told#0', 'get') === 6, { what: 'all six tells to run' })
  })

  it('a node-side ask honours its deadline and abort signal', async () => {
    await runtime.transform('shop/waiter#0', await b.bundle('shop/waiter', `export default class W {
      async wait () { await stem.ask('shop/waiter-peer', 'never') } }`), { owner: b.owner.publicKey })
    await runtime.transform('shop/waiter-peer#0', await b.bundle('shop/waiter-peer', 'export default class P { async never () { await new Promise(() => {}) } }'), { owner: b.owner.publicKey })
    await assert.rejects(runtime.ask('shop/waiter#0', 'wait', [], { deadline: Date.now() + 300 }), { message: 'ask to shop/waiter#0 timed out (it may or may not have run: retry with the same messageId)' })
    const controller = new AbortController()
    const asked = runtime.ask('shop/waiter-peer#0', 'never', [], { signal: controller.signal })
    controller.abort()
    await assert.rejects(asked, { message: 'ask to shop/waiter-peer#0 aborted' })
    assert.equal(runtime.cell('shop/waiter-peer#0')?.inflight, 0)
  })

  it('a dead cell host is restarted with its cells from their last state; in-flight messages get an error', async () => {
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER), { owner: b.owner.publicKey })
    await runtime.transform('shop/hang#0', await b.bundle('shop/hang', `export default class H { wait () { return stem.ask('shop/hang#0', 'wait') } }`), { owner: b.owner.publicKey })
    await runtime.ask('shop/counter#0', 'increment', [21])
    const pid = runtime.hostPids().get('shop') as number
    const inFlight = runtime.ask('shop/hang#0', 'wait')
    process.kill(pid, 'SIGKILL')
    await assert.rejects(inFlight, /cell host of app shop crashed/)
    await waitFor(() => events.filter(e => e.type === 'cell:restarted').length === 2, { what: 'cells restarted' })
    assert.equal(await runtime.ask('shop/counter#0', 'increment', [1]), 22)
    assert.notEqual(runtime.hostPids().get('shop'), pid)
    assert.deepEqual(events.filter(e => e.type === 'host:crashed').map(e => e.reason), ['was killed by SIGKILL'])
  })

  it('a cell host that stops answering its heartbeat is killed and restarted', async () => {
    runtime.addEventListener('host:crashed', () => {})
    await runtime.transform('shop/counter#0', await b.bundle('shop/counter', COUNTER, { timeout: 100 }), { owner: b.owner.publicKey })
    const stopped = createCellRuntime({ heartbeatInterval: 100, heartbeatTimeout: 1500 })
    const reasons: string[] = []
    stopped.addEventListener('host:crashed', e => { reasons.push(e.detail.reason) })
    stopped.start()
    try {
      await stopped.transform('frozen/c#0', await b.bundle('frozen/c', COUNTER, { timeout: 100 }), { owner: b.owner.publicKey })
      await stopped.ask('frozen/c#0', 'increment', [2])
      const pid = stopped.hostPids().get('frozen') as number
      process.kill(pid, 'SIGSTOP')
      await waitFor(() => reasons.length > 0, { what: 'heartbeat kill' })
      assert.match(reasons[0], /stopped answering its heartbeat/)
      await waitFor(async () => await stopped.ask('frozen/c#0', 'get').catch(() => undefined) === 2, { what: 'restarted cell' })
    } finally {
      await stopped.stop()
    }
  })

  it('a node that was itself frozen does not blame its cell host for the silence (it is not killed on waking)', async () => {
    const frozen = createCellRuntime({ heartbeatInterval: 100, heartbeatTimeout: 1000 })
    const reasons: string[] = []
    frozen.addEventListener('host:crashed', e => { reasons.push(e.detail.reason) })
    frozen.start()
    try {
      await frozen.transform('woken/c#0', await b.bundle('woken/c', COUNTER, { timeout: 100 }), { owner: b.owner.publicKey })
      await frozen.ask('woken/c#0', 'increment', [2])
      const pid = frozen.hostPids().get('woken') as number
      // this process does not run for 2.5 s (as under SIGSTOP): no heartbeat is read meanwhile
      const until = Date.now() + 2500
      while (Date.now() < until) { /* frozen */ }
      assert.equal(await frozen.ask('woken/c#0', 'increment', [1]), 3)
      await waitFor(() => (frozen.cell('woken/c#0')?.messages ?? 0) >= 2, { what: 'the cell to answer after the freeze' })
      // a few heartbeat rounds later, still the same host
      const seen = Date.now()
      await waitFor(() => Date.now() - seen > 1500, { what: 'heartbeat rounds after the freeze' })
      assert.deepEqual(reasons, [])
      assert.equal(frozen.hostPids().get('woken'), pid)
    } finally {
      await frozen.stop()
    }
  })

  it('a cell host past its RSS limit is killed; one that dies again and again marks its cells failed', async () => {
    const tight = createCellRuntime({ heartbeatInterval: 100, hostRssBase: 160 * MIB, memoryHeadroom: 0, maxHostRestarts: 3 })
    const seen: Array<{ type: string, reason: string }> = []
    tight.addEventListener('host:crashed', e => { seen.push({ type: 'host:crashed', reason: e.detail.reason }) })
    tight.addEventListener('cell:failed', e => { seen.push({ type: 'cell:failed', reason: e.detail.reason ?? '' }) })
    tight.start()
    try {
      // the isolate may hold 512 MiB, but the host may only reach 160 MiB of RSS
      const hog = `const keep = []
        export default class Hog { grow () { for (let i = 0; i < 300; i++) keep.push(new Array(125000).fill(i)); return keep.length } }`
      await tight.transform('fat/c#0', await b.bundle('fat/c', hog, { memory: 512 * MIB, timeout: 5000 }), { owner: b.owner.publicKey })
      for (let death = 1; death <= 3; death++) {
        await waitFor(async () => await tight.ask('fat/c#0', 'grow').then(() => false, (err: Error) => /has failed|crashed/.test(err.message)), { what: `host death ${death}`, timeout: 30_000 })
        await waitFor(() => seen.filter(e => e.type === 'host:crashed').length >= death)
      }
      await waitFor(() => seen.some(e => e.type === 'cell:failed'), { what: 'cell failed' })
      assert.match(seen[0].reason, /passed its memory limit: RSS \d+ MiB > 160 MiB/)
      assert.match(seen.find(e => e.type === 'cell:failed')?.reason ?? '', /died 3 times within 60 s/)
      assert.equal(tight.cell('fat/c#0')?.status, 'failed')
      await assert.rejects(tight.ask('fat/c#0', 'grow'), /has failed/)
      assert.equal(tight.hostPids().has('fat'), false)
    } finally {
      await tight.stop()
    }
  })

  it('reverting the last cell of an app stops its cell host; stop() leaves no process behind', async () => {
    await runtime.transform('solo/c#0', await b.bundle('solo/c', COUNTER), { owner: b.owner.publicKey })
    const pid = runtime.hostPids().get('solo') as number
    await runtime.revert('solo/c#0')
    await waitFor(() => processGone(pid), { what: 'host exit' })
    await runtime.transform('solo/c#0', await b.bundle('solo/c', COUNTER), { owner: b.owner.publicKey })
    const pid2 = runtime.hostPids().get('solo') as number
    await runtime.stop()
    await waitFor(() => processGone(pid2), { what: 'host exit on stop' })
    runtime.start()
  })
  it('a stream delivery answers the records applied and the ms their onRecord took (the pump sizes batches by it); a repeat applies nothing', async () => {
    const consumer = `export default class C {
      seen = []
      onRecord (record) { const until = Date.now() + 20; while (Date.now() < until) {} this.seen.push(record) }
      get () { return this.seen }
    }`
    await runtime.transform('shop/worker#0', await b.bundle('shop/worker', consumer), { owner: b.owner.publicKey })
    const records = [[0, 'k', 1, 'a'], [1, 'k', 2, 'b'], [2, null, 3, 'c']]
    const first = await runtime.ask('shop/worker#0', RECORD_METHOD, ['orders', 0, 0, records]) as { applied: number, ms: number }
    assert.equal(first.applied, 3)
    assert.ok(first.ms >= 60 && first.ms < 10_000, JSON.stringify(first))
    const repeat = await runtime.ask('shop/worker#0', RECORD_METHOD, ['orders', 0, 0, records]) as { applied: number, ms: number }
    assert.equal(repeat.applied, 0)
    assert.ok(repeat.ms < 60, JSON.stringify(repeat))
    assert.deepEqual(await runtime.ask('shop/worker#0', 'get'), ['a', 'b', 'c'])
  })
})
