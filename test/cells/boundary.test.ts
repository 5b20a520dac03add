// The host↔isolate protocol, property-tested: whatever text an isolate hands its cell host,
// the host never throws, never passes on a control character or non-JSON, and a message
// that fails leaves the state exactly as it was. Seeded: a failing seed replays exactly.
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { Malformed, MAX_ERROR_TEXT, parseOutcome, parseOutgoing, splitEntry } from '../../src/cells/host/boundary.js'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { signBundle } from '../../src/cells/bundle.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import type { PrivateKey } from '../../src/wire/keys.js'
import { prng } from '../support/prng.js'
import type { Prng } from '../support/prng.js'
import { MIB } from './helpers.js'

const FRAGMENTS = ['o', 'e', 'p', 't', 'a', '\0', '\x01', '\x02', '\x03', '\x1b[31m', '\n', '{', '}', '[', ']', '"', '\\', ':', ',', '1', '-0', '1e999',
  'null', 'true', '{"n":1}', '[1,2]', '"x"', 'good/counter', 'a/b#0', 'increment', '\u2028', '\ud800', 'é', ' ']
const CONTROL = /[\x00-\x1f]/

function junk (rand: Prng, max = 12): string {
  let text = ''
  for (let i = rand.int(0, max); i > 0; i--) text += rand.pick(FRAGMENTS)
  return text
}

function isJson (text: string): boolean {
  try { JSON.parse(text); return true } catch { return false }
}

describe('cells: host↔isolate boundary (property tests)', function () {
  it('20,000 random isolate answers: the parsers never throw and accept only well-formed records', () => {
    const rand = prng(16)
    const last = '{"n":0}'
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const text = junk(rand, 16)
      const entry = splitEntry(text)
      if (!(entry instanceof Malformed)) assert.equal(`${entry.result}\x03${entry.out}\x03${entry.finished}`, text)
      const outcome = parseOutcome(text, last, 1024)
      if (!(outcome instanceof Malformed)) {
        accepted++
        if (outcome.ok) {
          assert.ok(isJson(outcome.value), `value ${JSON.stringify(outcome.value)}`)
          assert.ok(outcome.state === last || typeof JSON.parse(outcome.state) === 'object', `state ${JSON.stringify(outcome.state)}`)
        } else {
          assert.ok(!CONTROL.test(outcome.error) && outcome.error.length <= MAX_ERROR_TEXT, `error ${JSON.stringify(outcome.error)}`)
        }
      }
      const out = parseOutgoing(text, 1024)
      if (!(out instanceof Malformed)) {
        assert.ok(!CONTROL.test(out.address) && !CONTROL.test(out.method) && out.address !== '' && out.method !== '')
        assert.ok(Array.isArray(JSON.parse(out.argsJson)))
      }
    }
    assert.ok(accepted > 0, 'some random records were well-formed')
  })

  it('honest records round-trip; a changed state must be a JSON object within the size bound', () => {
    assert.deepEqual(parseOutcome('o[1,{"a":"b"}]\0{"n":2}', '{"n":1}', 1024), { ok: true, value: '[1,{"a":"b"}]', state: '{"n":2}' })
    assert.deepEqual(parseOutcome('eboom\0{"n":9}', '{"n":1}', 1024), { ok: false, error: 'boom' })
    // an empty state: the isolate says the host's state did not change
    assert.deepEqual(parseOutcome('o2\0', '{"n":1}', 1024), { ok: true, value: '2', state: '{"n":1}' })
    assert.deepEqual(parseOutcome('eboom\0', '{"n":1}', 1024, true), { ok: false, error: 'boom' })
    assert.match((parseOutcome('o1\0[1]', '{}', 1024) as Malformed).reason, /not a JSON object/)
    assert.match((parseOutcome('o1\0{"a":', '{}', 1024) as Malformed).reason, /malformed state: not valid JSON/)
    assert.match((parseOutcome(`o1\0{"a":"${'x'.repeat(2000)}"}`, '{}', 1024) as Malformed).reason, /state is too large/)
    assert.match((parseOutcome(`o${'['.repeat(5000)}${']'.repeat(5000)}\0{}`, '{}', 1e6) as Malformed).reason, /nested too deeply/)
    assert.deepEqual(parseOutgoing('3\x01a/b#0\x01get\x01[1]\x01a', 1024), { askId: 3, address: 'a/b#0', method: 'get', argsJson: '[1]', tell: false })
    assert.match((parseOutgoing('3\x01a/b\x01get\x01{}\x01t', 1024) as Malformed).reason, /not an array/)
    assert.match((parseOutgoing('0\x01a/b\x01get\x01[]\x01t', 1024) as Malformed).reason, /bad ask id/)
  })

  describe('a real isolate fed random hostile operations', function () {
    this.timeout(60_000)
    let runtime: CellRuntime
    let owner: PrivateKey
    const address = 'prop/cell#0'
    const logs: string[] = []

    before(async () => {
      owner = await createEd25519Key()
      runtime = createCellRuntime({ bounds: { askTimeout: 1000, messageWallTime: 3000 } })
      runtime.start()
      runtime.addEventListener('cell:log', e => { logs.push(e.detail.text) })
      const code = `
        const TAMPER = [
          j => { RegExp.prototype[Symbol.replace] = () => j }, j => { String.prototype[Symbol.split] = () => [j, j] },
          j => { RegExp.prototype.exec = () => null }, j => { String.prototype.slice = () => j }, j => { String.prototype.indexOf = () => 0 },
          j => { JSON.stringify = () => j }, j => { JSON.parse = () => ({ forged: j }) }, j => { Object.keys = () => [j] },
          j => { Object.prototype.toJSON = function () { return j } }, j => { Array.prototype.toJSON = function () { return j } },
          j => { Object.defineProperty(Array.prototype, '0', { set () { throw new Error(j) }, configurable: true }) },
          j => { Object.prototype.get = function () { return j } }, j => { Map.prototype.get = () => undefined },
          j => { Set.prototype.has = () => true }, j => { Promise.prototype.then = function () { return j } }, j => { Reflect.apply = () => j }
        ]
        export default class P {
          n = 0
          get () { return this.n }
          async run (op, j, k) {
            this.n++
            this['f' + k] = j
            switch (op) {
              case 'throw': throw new Error(j)
              case 'throwValue': throw j
              case 'return': return j
              case 'log': stem.log(j, { j }); return 1
              case 'tell': stem.tell(j, j); return 1
              case 'ask': return await stem.ask(j, 'get')
              case 'field': this[j] = j; return 1
              case 'tamper': TAMPER[k % TAMPER.length](j); return 1
              case 'big': this.big = 'x'.repeat(2 * 1024 * 1024); return 1
              case 'cycle': { const o = {}; o.o = o; this.c = o; return 1 }
            }
          }
        }`
      await runtime.transform(address, await signBundle({ app: 'prop', cell: 'cell', entry: 'p.js', code, limits: { memory: 32 * MIB, timeout: 500, mailbox: 100 } }, owner), { owner: owner.publicKey })
    })
    after(async () => { await runtime.stop() })

    it('300 random messages: failures leave the state as it was, nothing malformed reaches the node', async () => {
      const rand = prng(1616)
      const ops = ['throw', 'throwValue', 'return', 'log', 'tell', 'ask', 'field', 'tamper', 'big', 'cycle']
      let state = (await runtime.snapshot(address)).state
      for (let i = 0; i < 300; i++) {
        const op = rand.pick(ops)
        const j = junk(rand)
        let ok = true
        let result: unknown
        try {
          result = await runtime.ask(address, 'run', [op, j, rand.int(0, 1000)])
        } catch (err) {
          ok = false
          assert.ok(!CONTROL.test((err as Error).message), `${op}: error ${JSON.stringify((err as Error).message)}`)
        }
        // crashed too often (the 'failed' event may arrive before or after the reply): nothing more to ask
        if (runtime.cell(address)?.status === 'failed') break
        const after = (await runtime.snapshot(address)).state
        const parsed = JSON.parse(after) as Record<string, unknown>
        assert.equal(typeof parsed, 'object', `${op}: state ${after}`)
        // a crashed and rebuilt isolate starts from the state the host kept: it is the same
        if (!ok) assert.equal(after, state, `${op} #${i} failed but changed the state`)
        else assert.notEqual(result, undefined)
        state = after
      }
      for (const line of logs) assert.ok(!CONTROL.test(line), `log ${JSON.stringify(line)}`)
    })
  })
})
