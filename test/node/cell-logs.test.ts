// The node's cell log (ring buffer + file) and the logs protocol's codec: queries, reload
// after a restart, rotation, and malformed, oversized, truncated and forged input.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cellLogFile, createCellLogs, matchesQuery, mergeLines, MAX_QUERY_LINES, type CellLogLine } from '../../src/node/cell-logs.js'
import { checkLogQuery, decodeLogsAnswer, decodeLogsRequest, encodeLogsAnswer, encodeLogsRequest, MAX_ANSWER_BYTES, MAX_REQUEST_BYTES } from '../../src/node/log-codec.js'
import { LogsAnswer, LogsRequest } from '../../src/wire/proto/logs.js'

const NODE = '12D3KooWnode'

describe('node: cell logs', () => {
  let dir = ''
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'stem-cell-logs-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('keeps lines tagged with node, address and revision, answers queries by app, cell and instance, and reloads them after a restart', async () => {
    const heard: string[] = []
    const logs = createCellLogs({ dataDir: dir, node: NODE, onLine: l => { heard.push(l.text) } })
    await logs.start()
    logs.append({ address: 'shop/orders#0', revision: 'r1', kind: 'log', text: 'one' })
    logs.append({ address: 'shop/orders#1', revision: 'r1', kind: 'error', text: 'two', method: 'get', stack: 'at Orders.get (orders.ts:3:5)' })
    logs.append({ address: 'shop/pricing#0', revision: 'r2', kind: 'crashed', text: 'three' })
    logs.append({ address: 'shopping/orders#0', revision: 'r3', kind: 'log', text: 'other app' })
    assert.deepEqual(heard, ['one', 'two', 'three', 'other app'])
    assert.deepEqual(logs.query({ app: 'shop' }).map(l => l.text), ['one', 'two', 'three'])
    assert.deepEqual(logs.query({ app: 'shop', cell: 'orders' }).map(l => l.text), ['one', 'two'])
    assert.deepEqual(logs.query({ app: 'shop', cell: 'orders#1' }).map(l => l.text), ['two'])
    assert.deepEqual(logs.query({ app: 'shop', limit: 1 }).map(l => l.text), ['three'], 'the newest')
    const all = logs.query({ app: 'shop' })
    assert.deepEqual(logs.query({ app: 'shop', since: all[2].ts + 1 }), [])
    assert.ok(all.every(l => l.node === NODE) && all[1].seq === all[0].seq + 1)
    assert.equal(all[1].stack, 'at Orders.get (orders.ts:3:5)')
    await logs.stop()
    assert.equal((await stat(cellLogFile(dir))).mode & 0o777, 0o600)

    // a restarted node reads them back, skipping damaged lines, and goes on numbering
    await writeFile(cellLogFile(dir), (await readFile(cellLogFile(dir), 'utf8')) + '{"ts":"x"}\nnot json\n{"ts":1,"seq":1,"node":"n","address":"a/b#0","revision":"","kind":"evil","text":""}\n')
    const again = createCellLogs({ dataDir: dir, node: NODE })
    await again.start()
    assert.deepEqual(again.query({ app: 'shop' }).map(l => l.text), ['one', 'two', 'three'])
    assert.equal(again.append({ address: 'shop/orders#0', revision: 'r1', kind: 'restarted', text: 'four' }).seq, 5)
    await again.stop()
  })

  it('keeps the newest lines in memory, cuts long texts and rotates the file', async () => {
    const logs = createCellLogs({ dataDir: dir, node: NODE, capacity: 3, maxFileBytes: 600 })
    await logs.start()
    for (let i = 0; i < 10; i++) logs.append({ address: 'a/b#0', revision: '', kind: 'log', text: `line ${i}` })
    assert.deepEqual(logs.query({ app: 'a' }).map(l => l.text), ['line 7', 'line 8', 'line 9'])
    assert.equal(logs.append({ address: 'a/b#0', revision: '', kind: 'log', text: 'x'.repeat(20_000) }).text.length, 8192)
    await logs.stop()
    assert.ok((await stat(cellLogFile(dir))).size < 600 + 9000)
    assert.ok((await stat(join(dir, 'cell-logs.1.jsonl'))).size > 0)
  })

  it('matches addresses and merges nodes in time order', () => {
    assert.ok(matchesQuery('shop/orders#12', { app: 'shop', cell: 'orders' }))
    assert.ok(!matchesQuery('shop/orders2#0', { app: 'shop', cell: 'orders' }))
    assert.ok(!matchesQuery('shop/orders#12', { app: 'shop', cell: 'orders#1' }))
    const line = (ts: number, node: string, seq: number): CellLogLine => ({ ts, node, seq, address: 'a/b#0', revision: '', kind: 'log', text: '' })
    assert.deepEqual(mergeLines([line(3, 'b', 1), line(1, 'b', 2), line(3, 'a', 9), line(3, 'b', 0)]).map(l => `${l.ts}${l.node}${l.seq}`), ['1b2', '3a9', '3b0', '3b1'])
  })
})

describe('node: logs protocol codec and query checks', () => {
  it('checks queries with one-line reasons', () => {
    assert.deepEqual(checkLogQuery({ app: 'shop', cell: 'orders#1', since: 5, limit: 10 }), { app: 'shop', cell: 'orders#1', since: 5, limit: 10 })
    assert.deepEqual(checkLogQuery({ app: 'shop', cell: '' }), { app: 'shop' })
    assert.throws(() => checkLogQuery({}), /^Error: logs: name an app$/)
    assert.throws(() => checkLogQuery({ app: 'shop/x' }), /invalid app or cell "shop\/x"/)
    assert.throws(() => checkLogQuery({ app: 'shop', cell: 'a b' }), /invalid app or cell "shop\/a b"/)
    assert.throws(() => checkLogQuery({ app: 'shop', cell: 'orders/u1' }), /invalid app or cell "shop\/orders\/u1"/)
    assert.throws(() => checkLogQuery({ app: 'shop', since: -1 }), /since must be ms since the epoch/)
    assert.throws(() => checkLogQuery({ app: 'shop', since: Number.NaN }), /since must be ms since the epoch/)
    assert.throws(() => checkLogQuery({ app: 'shop', limit: MAX_QUERY_LINES + 1 }), /limit must be 1…2000/)
  })

  it('round-trips requests and answers', () => {
    assert.deepEqual(decodeLogsRequest(encodeLogsRequest({ app: 'shop', cell: 'orders', since: 7 })), { app: 'shop', cell: 'orders', since: 7, limit: MAX_QUERY_LINES })
    const lines: CellLogLine[] = [
      { ts: 1, seq: 1, node: NODE, address: 'shop/orders#0', revision: 'r', kind: 'log', text: 'hi' },
      { ts: 2, seq: 2, node: NODE, address: 'shop/orders#0', revision: 'r', kind: 'error', text: 'boom', method: 'get', stack: 'at x (a.ts:1:1)' }
    ]
    assert.deepEqual(decodeLogsAnswer(encodeLogsAnswer(lines)), lines)
    assert.throws(() => decodeLogsAnswer(encodeLogsAnswer([], 'logs: name an app')), /^Error: logs: name an app$/)
  })

  it('refuses malformed, truncated, oversized and forged bytes', () => {
    const request = encodeLogsRequest({ app: 'shop' })
    assert.throws(() => decodeLogsRequest(request.subarray(0, request.byteLength - 1)), /invalid logs request/)
    assert.throws(() => decodeLogsRequest(new Uint8Array([0xff, 0xff, 0xff])), /invalid logs request/)
    assert.throws(() => decodeLogsRequest(new Uint8Array(MAX_REQUEST_BYTES + 1)), /invalid logs request: \d+ bytes/)
    assert.throws(() => decodeLogsRequest(LogsRequest.encode({ app: '../etc', cell: '', since: 0n, limit: 0 })), /invalid app or cell/)
    assert.throws(() => decodeLogsRequest(LogsRequest.encode({ app: 'shop', cell: '', since: 2n ** 60n, limit: 0 })), /since is out of range/)
    assert.throws(() => decodeLogsAnswer(new Uint8Array(MAX_ANSWER_BYTES + 1)), /invalid logs answer: \d+ bytes/)
    const wire = { ts: 1n, seq: 1n, node: NODE, address: 'a/b#0', revision: '', kind: 'log', text: 'x', method: '', stack: '' }
    assert.throws(() => decodeLogsAnswer(LogsAnswer.encode({ lines: [{ ...wire, kind: 'evil' }], error: '' })), /a line of kind "evil"/)
    assert.throws(() => decodeLogsAnswer(LogsAnswer.encode({ lines: [{ ...wire, ts: 2n ** 60n }], error: '' })), /out of range/)
    assert.throws(() => decodeLogsAnswer(LogsAnswer.encode({ lines: [{ ...wire, text: 'x'.repeat(9000) }], error: '' })), /too long/)
    assert.throws(() => decodeLogsAnswer(LogsAnswer.encode({ lines: Array.from({ length: MAX_QUERY_LINES + 1 }, () => wire), error: '' })), /invalid logs answer/)
    const answer = encodeLogsAnswer([{ ts: 1, seq: 1, node: NODE, address: 'a/b#0', revision: '', kind: 'log', text: 'x' }])
    assert.throws(() => decodeLogsAnswer(answer.subarray(0, answer.byteLength - 2)), /invalid logs answer/)
  })

  it('cuts an answer to the newest lines that fit', () => {
    const big = Array.from({ length: 2000 }, (_, i): CellLogLine => ({ ts: i, seq: i, node: NODE, address: 'a/b#0', revision: '', kind: 'log', text: 'y'.repeat(8192) }))
    const bytes = encodeLogsAnswer(big)
    assert.ok(bytes.byteLength <= MAX_ANSWER_BYTES)
    const lines = decodeLogsAnswer(bytes)
    assert.ok(lines.length > 100 && lines.length < 2000)
    assert.equal(lines[lines.length - 1].seq, 1999)
  })
})
