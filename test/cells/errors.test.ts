// Cell errors with locations and HTTP answers from cells, on a real runtime (cell host
// process, isolates): a thrown error carries the cell, the method and a stack in the
// original TypeScript file; stem.error sets a status that an asking cell sees as `code`;
// stem.response sets status and headers; bad arguments to either are clear errors.
import { describe, it, before, after, beforeEach, afterEach } from 'mocha'
import assert from 'node:assert/strict'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { CellError, splitReply, withTrailer, errorFromReply, replyOfError, timeoutText, isTimeoutReply } from '../../src/cells/reply-meta.js'
import { localError, MessagingError, remoteError } from '../../src/messaging/errors.js'
import type { CellErrorDetail } from '../../src/cells/events.js'
import { formatBuildError } from '../../src/cells/bundle-build.js'
import { waitFor } from '../support/wait.js'
import { createBundler } from './helpers.js'
import type { Bundler } from './helpers.js'

const ORDERS = `
interface Order { id: number, title: string }

export default class Orders {
  orders: Order[] = []

  add (arg: { body: { title: string } }) {
    const order = { id: this.orders.length + 1, title: arg.body.title }
    this.orders.push(order)
    return stem.response(201, order, { location: '/orders/' + order.id })
  }

  get (id: number) {
    const found = this.orders.find(o => o.id === id)
    if (found === undefined) throw stem.error(404, 'no order ' + id)
    return found
  }

  broken () {
    const nothing: any = undefined
    nothing.title = 'x'
  }

  async viaOther (id: number) {
    try {
      return await stem.ask('shop/orders#0', 'get', id)
    } catch (err: any) {
      return { caught: err.message, code: err.code }
    }
  }

  async rethrow (id: number) { return await stem.ask('shop/orders#0', 'get', id) }

  badStatus () { return stem.response(99, null) }
  badHeader () { return stem.response(200, null, { 'bad header': 'x' }) }
  badErrorStatus () { throw stem.error(200, 'not an error status') }
}
`

describe('cells: errors with locations, HTTP answers', function () {
  let b: Bundler
  let runtime: CellRuntime
  const errors: CellErrorDetail[] = []

  before(async () => { b = await createBundler() })
  after(() => { b.dir.remove() })
  beforeEach(async () => {
    errors.length = 0
    runtime = createCellRuntime({ dataDir: b.dir.path })
    runtime.addEventListener('cell:error', e => { errors.push(e.detail) })
    runtime.start()
    const bundle = await b.bundle('shop/orders', ORDERS, {}, 'app/orders.ts')
    await runtime.transform('shop/orders#0', bundle, { owner: b.owner.publicKey })
    await runtime.transform('shop/front#0', await b.bundle('shop/front', ORDERS, {}, 'app2/front.ts'), { owner: b.owner.publicKey })
  })
  afterEach(async () => { await runtime.stop() })

  it('a thrown error carries the cell, the method and a stack in the original .ts file', async () => {
    const err = await runtime.askJson('shop/orders#0', 'broken', '[]').then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof CellError, String(err))
    assert.match(err.message, /Cannot set properties of undefined \(setting 'title'\)/)
    assert.equal(err.cellError.cell, 'shop/orders#0')
    assert.equal(err.cellError.method, 'broken')
    assert.equal(err.cellError.status, undefined)
    assert.match(err.cellError.stack ?? '', /^at Orders\.broken \(orders\.ts:21:\d+\)$/m, err.cellError.stack)
    // and the node's log sink hears of it, with the stack
    await waitFor(() => errors.length === 1, { what: 'the cell:error event' })
    assert.equal(errors[0].address, 'shop/orders#0')
    assert.equal(errors[0].method, 'broken')
    assert.match(errors[0].stack ?? '', /orders\.ts:21/)
  })

  it('stem.error sets the status; an asking cell sees it as `code`; a rethrow keeps it', async () => {
    const err = await runtime.askJson('shop/orders#0', 'get', '[99]').then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof CellError)
    assert.equal(err.message, 'no order 99')
    assert.equal(err.cellError.status, 404)
    assert.deepEqual(await runtime.ask('shop/front#0', 'viaOther', [99]), { caught: 'no order 99', code: 404 })
    const rethrown = await runtime.askJson('shop/front#0', 'rethrow', '[7]').then(() => undefined, (e: unknown) => e)
    assert.ok(rethrown instanceof CellError)
    assert.equal(rethrown.cellError.status, 404)
    assert.equal(rethrown.cellError.cell, 'shop/front#0')
    // a 4xx is an answer the cell chose, not a fault: no cell:error for it
    assert.equal(errors.filter(e => e.method === 'get').length, 0)
  })

  it('stem.response sets status and headers beside the body; a cell asking it gets the body', async () => {
    const text = await runtime.askJson('shop/orders#0', 'add', JSON.stringify([{ body: { title: 'tea' } }]))
    const { head, trailer } = splitReply(text)
    assert.deepEqual(JSON.parse(head), { id: 1, title: 'tea' })
    assert.deepEqual(trailer?.response, { status: 201, headers: { location: '/orders/1' } })
    assert.deepEqual(await runtime.ask('shop/orders#0', 'add', [{ body: { title: 'milk' } }]), { id: 2, title: 'milk' })
    assert.deepEqual(await runtime.ask('shop/front#0', 'viaOther', [2]), { id: 2, title: 'milk' })
  })

  it('bad arguments to stem.response and stem.error are clear errors', async () => {
    await assert.rejects(runtime.ask('shop/orders#0', 'badStatus'), /stem\.response\(status, body, headers\): status must be a whole number 200–599, got 99/)
    await assert.rejects(runtime.ask('shop/orders#0', 'badHeader'), /"bad header" is not a valid HTTP header name/)
    await assert.rejects(runtime.ask('shop/orders#0', 'badErrorStatus'), /stem\.error\(status, message\): status must be a whole number 400–599, got 200/)
  })
})

describe('cells: reply trailers (pure)', () => {
  it('round-trips, and ignores what is not a valid trailer', () => {
    const text = withTrailer('boom', { error: { cell: 'a/b#0', method: 'm', status: 409, stack: 'at x (f.ts:1:2)' } })
    const err = errorFromReply(text)
    assert.ok(err instanceof CellError)
    assert.equal(err.message, 'boom')
    assert.deepEqual(err.cellError, { cell: 'a/b#0', method: 'm', status: 409, stack: 'at x (f.ts:1:2)' })
    assert.equal(replyOfError(err), text)
    assert.equal(withTrailer('plain', undefined), 'plain')
    // forged or malformed trailers are dropped, the head kept
    for (const bad of ['x\n{not json', 'x\n[]', 'x\n{"error":{"cell":1}}', 'x\n{"response":{"status":700,"headers":{}}}', 'x\n{"response":{"status":200,"headers":{"content-length":"1"}}}', 'x\n{"response":{"status":200,"headers":{"a":"b\\r\\nc: d"}}}']) {
      const { head, trailer } = splitReply(bad)
      assert.equal(head, 'x')
      assert.equal(trailer, undefined, bad)
    }
    assert.ok(!(errorFromReply('x\n{"error":{"cell":1}}') instanceof CellError))
  })

  it('a runtime timeout reads as a timeout wherever it fired; a cell error with the same words stays a cell error', () => {
    const text = timeoutText('shop/lazy#0')
    assert.match(text, /may or may not have run/)
    assert.ok(isTimeoutReply(text))
    assert.ok(isTimeoutReply(timeoutText('shop/lazy#0', 50)))
    // the receiving node's runtime saw the deadline pass before the caller's timer: before the
    // fix this was a 'remote' error without the retry hint (a CI run failed on it)
    const remote = remoteError(text)
    assert.equal(remote.code, 'timeout')
    assert.equal(remote.message, text)
    const local = localError(errorFromReply(text))
    assert.ok(local instanceof MessagingError)
    assert.equal(local.code, 'timeout')
    // a cell that threw (or rethrew) such a text: it has a trailer, so it is the cell's own error
    const thrown = withTrailer(text, { error: { cell: 'shop/a#0', method: 'm' } })
    assert.ok(!isTimeoutReply(thrown))
    assert.equal(remoteError(thrown).code, 'remote')
    const cellError = errorFromReply(thrown)
    assert.equal(localError(cellError), cellError)
    // a cell's own nested ask timing out (cell host text, no retry hint), forged and truncated texts
    for (const other of ['ask to shop/b#0 timed out after 30000 ms', 'ask to shop/b#0 timed out', 'xask to a/b#0 timed out (it may or may not have run', 'ask to  timed out (it may', '']) {
      assert.ok(!isTimeoutReply(other), other)
      assert.equal(remoteError(other).code, 'remote')
    }
  })

  it('a build error names file:line:column and shows the source line', () => {
    assert.equal(formatBuildError({ text: 'Expected ")" but found "return"', location: { file: 'todos.ts', line: 3, column: 4, lineText: '  a(return' } }),
      'todos.ts:3:5: Expected ")" but found "return"\n    3 |   a(return\n            ^')
  })
})
