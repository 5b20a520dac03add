// The cell host collects the texts that come out of isolates (host/external-strings.ts):
// isolated-vm hands them over as external strings V8 never counts, so without it a keyed
// shard with a large state grew its host by about a state per read until the node killed
// the host for passing its memory limit.
import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import { ExternalStrings } from '../../src/cells/host/external-strings.js'
import { CellHost } from '../../src/cells/host/cell-host.js'
import type { FromHost } from '../../src/cells/host/protocol.js'
import { DEFAULT_BOUNDS } from '../../src/cells/limits.js'
import { waitFor } from '../support/wait.js'
import { createBundler, MIB } from './helpers.js'
import type { Bundler } from './helpers.js'

const ITEM = 'export default class Item { data = \'\'; put (s) { this.data = s; return s.length } get () { return this.data.length } }'

/** counts the characters out of isolates instead of collecting */
class CountingStrings extends ExternalStrings {
  chars = 0
  constructor () { super(() => {}) }
  override note (chars: number): void { this.chars += chars }
}

describe('cells: texts out of isolates are collected', function () {
  let b: Bundler
  before(async () => { b = await createBundler() })
  after(() => { b.dir.remove() })

  it('collects once the characters since the last collection pass the bound', () => {
    let collected = 0
    const texts = new ExternalStrings(() => { collected++ }, 100)
    texts.note(60)
    assert.equal(collected, 0)
    texts.note(40)
    assert.equal(collected, 1)
    texts.note(99)
    assert.equal(collected, 1, 'the count starts again after a collection')
    texts.note(1)
    assert.equal(collected, 2)
  })

  it('a message that leaves the state as it was does not copy it out of the isolate again', async () => {
    const sent: FromHost[] = []
    const texts = new CountingStrings()
    const counting = new CellHost(message => { sent.push(message) }, () => {}, texts)
    try {
      counting.handle({ t: 'init', app: 'dense', bounds: DEFAULT_BOUNDS, localAsks: true })
      const bundle = await b.bundle('dense/item', ITEM, {}, 'item.js')
      const state = JSON.stringify({ data: 'x'.repeat(100_000) })
      counting.handle({ t: 'transform', req: 1, address: 'dense/item#0', hash: bundle.hash, code: bundle.code, limits: bundle.limits, state, version: 1, replace: false })
      await waitFor(() => sent.some(m => m.t === 'done'), { timeout: 10_000, what: 'the transform' })
      const loaded = texts.chars
      for (let id = 1; id <= 50; id++) counting.handle({ t: 'call', id, address: 'dense/item#0', method: 'get', args: '[]', tell: false })
      await waitFor(() => sent.filter(m => m.t === 'reply').length === 50, { timeout: 10_000, what: '50 reads to be answered' })
      assert.ok(texts.chars - loaded < 10_000, `50 reads of a 100 KB state copied ${texts.chars - loaded} characters out of the isolate`)
      assert.deepEqual(counting.takeChangedState(), [], 'reads change no state')
      counting.handle({ t: 'call', id: 51, address: 'dense/item#0', method: 'put', args: '["y"]', tell: false })
      await waitFor(() => sent.filter(m => m.t === 'reply').length === 51, { timeout: 10_000, what: 'the write' })
      const changed = counting.takeChangedState() as Array<Extract<FromHost, { t: 'state' }>>
      assert.deepEqual(changed.map(c => JSON.parse(c.state)), [{ data: 'y' }])
    } finally {
      counting.stop()
    }
  })

  it('a keyed shard with a large state serves thousands of reads within its host\'s memory limit', async function () {
    this.timeout(180_000)
    const crashes: string[] = []
    // the host's limit: 192 MiB + 3 × 16 MiB; the shard's state is about 190 KB
    const runtime = createCellRuntime({ heartbeatInterval: 200, log: (address, text) => { if (/crash|memory limit/.test(text)) crashes.push(`${address} ${text}`) } })
    runtime.start()
    try {
      const bundle = await b.bundle('dense/item', ITEM, { memory: 16 * MIB }, 'item.js', { idle: 600_000 })
      await runtime.transform('dense/item#0', bundle, { owner: b.owner.publicKey })
      const keys = 1500
      const state = 'x'.repeat(100)
      for (let from = 0; from < keys; from += 50) {
        await Promise.all(Array.from({ length: 50 }, async (_, k) => await runtime.ask(`dense/item#0/k-${from + k}`, 'put', [state])))
      }
      // each read returns the shard's whole state to the host: without collecting, about 2,500 reads pass the limit
      for (let round = 0; round < 3; round++) {
        for (let from = 0; from < keys; from += 50) {
          await Promise.all(Array.from({ length: 50 }, async (_, k) => assert.equal(await runtime.ask(`dense/item#0/k-${from + k}`, 'get'), 100)))
        }
      }
      assert.equal(runtime.cell('dense/item#0')?.status, 'transformed')
      assert.deepEqual(crashes, [])
    } finally {
      await runtime.stop()
    }
  })
})
