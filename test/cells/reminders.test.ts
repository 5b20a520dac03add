// Durable reminders in real isolates (a real cell host): stem.schedule/cancel/reminders,
// the limits, rollback with a throwing message, firing with its due time, and the
// reminders carried in the state (restore, fire late once).
import { describe, it, before, after, beforeEach, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { remindersOfState } from '../../src/cells/reminders.js'
import { CellHost } from '../../src/cells/host/cell-host.js'
import type { FromHost } from '../../src/cells/host/protocol.js'
import { DEFAULT_BOUNDS } from '../../src/cells/limits.js'
import { waitFor } from '../support/wait.js'
import { createBundler } from './helpers.js'
import type { Bundler } from './helpers.js'

const ALARM = `
export default class Alarm {
  fired = []
  set (when, ...args) { return stem.schedule(when, 'ring', ...args) }
  setBad (when, method, ...args) { return stem.schedule(when, method, ...args) }
  setThenThrow (when) { stem.schedule(when, 'ring', 'doomed'); throw new Error('changed my mind') }
  cancel (id) { return stem.cancel(id) }
  list () { return stem.reminders() }
  ring (...args) { this.fired.push(args); return args.length }
  boom (meta) { this.fired.push(['boom', meta.reminder]); throw new Error('boom failed') }
  setHuge (n) { return stem.schedule(1000, 'ring', 'x'.repeat(n)) }
  spin () { for (;;) {} }
  setSpin (when) { return stem.schedule(when, 'spin') }
  setBoom (when) { return stem.schedule(when, 'boom') }
  many (n) { for (let i = 0; i < n; i++) stem.schedule(60000 + i, 'ring', i); return stem.reminders().length }
  get () { return this.fired }
}
`

describe('cells: durable reminders', function () {
  let b: Bundler
  let runtime: CellRuntime
  const logs: string[] = []

  before(async () => { b = await createBundler() })
  after(() => { b.dir.remove() })
  beforeEach(() => {
    logs.length = 0
    runtime = createCellRuntime({ heartbeatInterval: 200, log: (address, text) => { logs.push(`${address} ${text}`) } })
    runtime.start()
  })
  afterEach(async () => { await runtime.stop() })

  async function alarm (state?: string): Promise<void> {
    await runtime.transform('app/alarm#0', await b.bundle('app/alarm', ALARM), { owner: b.owner.publicKey, state })
  }

  it('fires a reminder once, with its arguments and { reminder, due }, and takes it out of the state', async () => {
    await alarm()
    const before = Date.now()
    const id = await runtime.ask('app/alarm#0', 'set', [150, 'hello', { n: 1 }]) as string
    assert.match(id, /^[A-Za-z0-9_-]{1,64}$/)
    const listed = await runtime.ask('app/alarm#0', 'list') as Array<{ id: string, due: number, method: string, args: unknown[] }>
    assert.equal(listed.length, 1)
    assert.deepEqual({ ...listed[0], due: 0 }, { id, due: 0, method: 'ring', args: ['hello', { n: 1 }] })
    assert.ok(listed[0].due >= before + 150 && listed[0].due <= Date.now() + 150)
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'get') as unknown[]).length === 1, { timeout: 10_000, what: 'the reminder to fire' })
    const fired = await runtime.ask('app/alarm#0', 'get') as Array<[string, { n: number }, { reminder: string, due: number }]>
    assert.deepEqual(fired[0].slice(0, 2), ['hello', { n: 1 }])
    assert.deepEqual(fired[0][2], { reminder: id, due: listed[0].due })
    assert.deepEqual(await runtime.ask('app/alarm#0', 'list'), [])
    assert.deepEqual(remindersOfState((await runtime.snapshot('app/alarm#0')).state).reminders, [])
  })

  it('lists reminders by due time, cancels them, and a cancelled one never fires', async () => {
    await alarm()
    const late = await runtime.ask('app/alarm#0', 'set', [60_000, 'late']) as string
    const soon = await runtime.ask('app/alarm#0', 'set', [300, 'soon']) as string
    const epoch = await runtime.ask('app/alarm#0', 'set', [Date.now() + 30_000, 'epoch']) as string
    assert.deepEqual((await runtime.ask('app/alarm#0', 'list') as Array<{ id: string }>).map(r => r.id), [soon, epoch, late])
    assert.equal(await runtime.ask('app/alarm#0', 'cancel', [soon]), true)
    assert.equal(await runtime.ask('app/alarm#0', 'cancel', [soon]), false)
    assert.equal(await runtime.ask('app/alarm#0', 'cancel', [42]), false)
    const state = (await runtime.snapshot('app/alarm#0')).state
    assert.deepEqual(remindersOfState(state).reminders.map(r => r.id), [epoch, late])
    // past the due time of the cancelled one, with a later reminder that does fire as the witness
    await runtime.ask('app/alarm#0', 'set', [600, 'witness'])
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'get') as unknown[]).length > 0, { timeout: 10_000, what: 'the witness reminder' })
    assert.deepEqual((await runtime.ask('app/alarm#0', 'get') as unknown[][]).map(f => f[0]), ['witness'])
  })

  it('refuses bad schedules with a clear error, and the limit of 1,000 pending', async () => {
    await alarm()
    await assert.rejects(runtime.ask('app/alarm#0', 'set', [5]), /must be due at least 10 ms ahead, got a delay of 5 ms/)
    await assert.rejects(runtime.ask('app/alarm#0', 'set', [-1]), /at least 10 ms ahead/)
    await assert.rejects(runtime.ask('app/alarm#0', 'set', [Date.now() - 1000]), /ms in the past/)
    await assert.rejects(runtime.ask('app/alarm#0', 'set', ['soon']), /when must be a number/)
    await assert.rejects(runtime.ask('app/alarm#0', 'setBad', [1000, 'nope']), /"nope" is not a method of app\/alarm#0/)
    await assert.rejects(runtime.ask('app/alarm#0', 'setBad', [1000, 'constructor']), /not a method/)
    await assert.rejects(runtime.ask('app/alarm#0', 'setHuge', [1024 * 1024 + 1]), /reminder arguments is too large/)
    // each fits, but not the state with both
    await runtime.ask('app/alarm#0', 'setHuge', [600_000])
    await assert.rejects(runtime.ask('app/alarm#0', 'setHuge', [600_000]), /state is too large with its 2 reminders/)
    assert.equal((await runtime.ask('app/alarm#0', 'list') as unknown[]).length, 1)
    await runtime.ask('app/alarm#0', 'cancel', [(await runtime.ask('app/alarm#0', 'list') as Array<{ id: string }>)[0].id])
    assert.equal(await runtime.ask('app/alarm#0', 'many', [1000]), 1000)
    await assert.rejects(runtime.ask('app/alarm#0', 'set', [1000]), /too many pending reminders on app\/alarm#0 \(limit 1000\)/)
    // the failed message left the 1,000 as they were
    assert.equal((await runtime.ask('app/alarm#0', 'list') as unknown[]).length, 1000)
  })

  it('a message that throws after scheduling leaves no reminder (rolled back with the state)', async () => {
    await alarm()
    const version = runtime.cell('app/alarm#0')?.version
    await assert.rejects(runtime.ask('app/alarm#0', 'setThenThrow', [50]), /changed my mind/)
    assert.deepEqual(await runtime.ask('app/alarm#0', 'list'), [])
    assert.equal(runtime.cell('app/alarm#0')?.version, version)
    await runtime.ask('app/alarm#0', 'set', [300, 'witness'])
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'get') as unknown[]).length > 0, { timeout: 10_000, what: 'the witness reminder' })
    assert.deepEqual((await runtime.ask('app/alarm#0', 'get') as unknown[][]).map(f => f[0]), ['witness'])
  })

  it('a reminder whose method throws is consumed once: its state changes are rolled back, it is not fired again', async () => {
    await alarm()
    const errors: string[] = []
    runtime.addEventListener('cell:error', e => { errors.push(e.detail.message) })
    await runtime.ask('app/alarm#0', 'setBoom', [50])
    await waitFor(() => errors.length > 0, { timeout: 10_000, what: 'the reminder to fail' })
    assert.deepEqual(errors, ['boom failed'])
    assert.deepEqual(await runtime.ask('app/alarm#0', 'list'), [])
    assert.deepEqual(await runtime.ask('app/alarm#0', 'get'), [])
  })

  it('a reminder whose method crashes its cell is retried, then dropped unrun: the cell does not fail', async function () {
    this.timeout(60_000)
    await runtime.transform('app/alarm#0', await b.bundle('app/alarm', ALARM, { timeout: 50 }), { owner: b.owner.publicKey })
    await runtime.ask('app/alarm#0', 'setSpin', [20])
    await waitFor(() => logs.some(l => /did not fire in 3 attempts: dropped/.test(l)), { timeout: 30_000, what: 'the poison reminder to be dropped' })
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'list') as unknown[]).length === 0, { timeout: 10_000, what: 'the reminder to leave the state' })
    assert.equal(runtime.cell('app/alarm#0')?.status, 'transformed')
    assert.equal(logs.filter(l => /did not fire: cell app\/alarm#0 crashed: exceeded its CPU time limit/.test(l)).length, 3, logs.join('\n'))
    // and the cell still fires the next one
    await runtime.ask('app/alarm#0', 'set', [20, 'after'])
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'get') as unknown[]).length > 0, { timeout: 10_000, what: 'the next reminder' })
  })

  it('a firing cannot be forged from outside: a method name with a control character is refused', async () => {
    const state = JSON.stringify({ fired: [], 'stem:reminders': [{ id: 'rlater', due: Date.now() + 60_000, method: 'ring', args: '["x"]' }] })
    await alarm(state)
    await assert.rejects(runtime.ask('app/alarm#0', '\x04rlater'), /invalid method name/)
    await assert.rejects(runtime.ask('app/alarm#0', '\x05rlater'), /invalid method name/)
    assert.deepEqual((await runtime.ask('app/alarm#0', 'list') as Array<{ id: string }>).map(r => r.id), ['rlater'])
    assert.deepEqual(await runtime.ask('app/alarm#0', 'get'), [])
  })

  it('a state restored with a reminder past due fires it once, late, with its due time', async () => {
    const due = Date.now() - 60_000
    const state = JSON.stringify({ fired: [], 'stem:reminders': [{ id: 'rmissed', due, method: 'ring', args: '["late"]' }] })
    await alarm(state)
    await waitFor(async () => (await runtime.ask('app/alarm#0', 'get') as unknown[]).length > 0, { timeout: 10_000, what: 'the missed reminder' })
    assert.deepEqual(await runtime.ask('app/alarm#0', 'get'), [['late', { reminder: 'rmissed', due }]])
    assert.deepEqual(await runtime.ask('app/alarm#0', 'list'), [])
  })

  it('drops malformed reminders of a saved state with a log line, keeps the good ones', async () => {
    const state = JSON.stringify({ fired: [], 'stem:reminders': [{ id: 'bad id!', due: 1, method: 'ring', args: '[]' }, { id: 'rgood', due: Date.now() + 60_000, method: 'ring', args: '[]' }, 7] })
    await alarm(state)
    assert.deepEqual((await runtime.ask('app/alarm#0', 'list') as Array<{ id: string }>).map(r => r.id), ['rgood'])
    await waitFor(() => logs.some(l => /dropped 2 malformed reminder/.test(l)), { timeout: 5000, what: 'the log line' })
  })

  it('refuses a cell field named stem:reminders (reserved)', async () => {
    await runtime.transform('app/forger#0', await b.bundle('app/forger', `export default class F { forge () { this['stem:reminders'] = [{ id: 'x', due: 1, method: 'forge', args: '[]' }] } }`), { owner: b.owner.publicKey })
    await assert.rejects(runtime.ask('app/forger#0', 'forge'), /field stem:reminders is reserved/)
    assert.equal(runtime.cell('app/forger#0')?.version, 0)
  })
})

describe('cells: a retried firing runs its reminder once (the cell host, in process)', function () {
  it('two firings of one reminder id: the first runs its method, the second does nothing', async () => {
    const b = await createBundler()
    const sent: FromHost[] = []
    const host = new CellHost(message => { sent.push(message) }, () => {})
    try {
      host.handle({ t: 'init', app: 'app', bounds: DEFAULT_BOUNDS, localAsks: true })
      const bundle = await b.bundle('app/alarm', ALARM)
      const due = Date.now() - 5
      const state = JSON.stringify({ fired: [], 'stem:reminders': [{ id: 'rtwice', due, method: 'ring', args: '["x"]' }] })
      host.handle({ t: 'transform', req: 1, address: 'app/alarm#0', hash: bundle.hash, code: bundle.code, limits: bundle.limits, state, version: 3, replace: false })
      assert.deepEqual(sent.find(m => m.t === 'done'), { t: 'done', req: 1, ok: true, text: state, version: 3 })
      host.handle({ t: 'fire', id: 10, address: 'app/alarm#0', reminder: 'rtwice', method: 'ring', drop: false })
      host.handle({ t: 'fire', id: 11, address: 'app/alarm#0', reminder: 'rtwice', method: 'ring', drop: false })
      await waitFor(() => sent.filter(m => m.t === 'reply').length === 2, { timeout: 10_000, what: 'both firings to be answered' })
      const replies = sent.filter(m => m.t === 'reply')
      assert.deepEqual(replies, [{ t: 'reply', id: 10, ok: true, text: '2' }, { t: 'reply', id: 11, ok: true, text: 'null' }])
      const after = host.takeChangedState()
      assert.equal(after.length, 1)
      const s = after[0] as Extract<FromHost, { t: 'state' }>
      assert.deepEqual(JSON.parse(s.state), { fired: [['x', { reminder: 'rtwice', due }]] })
      assert.equal(s.version, 4)
      // a firing of an id the cell does not hold, or malformed, is refused or a no-op
      host.handle({ t: 'fire', id: 12, address: 'app/alarm#0', reminder: 'bad id', method: 'ring', drop: false })
      host.handle({ t: 'fire', id: 13, address: 'app/other#0', reminder: 'rtwice', method: 'ring', drop: false })
      await waitFor(() => sent.filter(m => m.t === 'reply').length === 4, { timeout: 10_000, what: 'the refusals' })
      assert.deepEqual(sent.filter(m => m.t === 'reply').slice(2), [
        { t: 'reply', id: 12, ok: false, text: 'invalid reminder for app/alarm#0' },
        { t: 'reply', id: 13, ok: false, text: 'no cell app/other#0 on this node' }
      ])
    } finally {
      host.stop()
      b.dir.remove()
    }
  })
})
