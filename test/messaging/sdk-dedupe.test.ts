import { describe, it, before, after } from 'mocha'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect, newMessageId } from '../../src/messaging/sdk.js'
import type { CellCaller } from '../../src/messaging/sdk.js'
import { callHandler } from '../../src/messaging/call-client.js'
import { DedupeWindow } from '../../src/messaging/dedupe.js'
import type { DedupeResult } from '../../src/messaging/dedupe.js'
import { MessagingError } from '../../src/messaging/errors.js'
import { createStaticDirectory } from '../../src/messaging/directory.js'

interface Counter {
  count: number
  increment: (by?: number) => number
  get: () => number
}

describe('messaging: SDK over HTTP, directory and dedupe window', function () {
  const calls: Array<{ address: string, method: string, args: unknown[], messageId?: string }> = []
  // a stand-in for the node's CellMessaging behind the control API (pure logic under test is the client and handler)
  const counts = new Map<string, number>()
  const caller: CellCaller = {
    async ask (address, method, args, options = {}) {
      calls.push({ address, method, args, messageId: options.messageId })
      if (address !== 'shop/counter') throw new MessagingError('unknown-address', `unknown cell address ${address}: the directory names no node for it`)
      if (method === 'increment') { counts.set(address, (counts.get(address) ?? 0) + (args[0] as number)); return counts.get(address) }
      if (method === 'get') return counts.get(address) ?? 0
      throw new MessagingError('remote', `unknown method "${method}"`)
    }
  }
  let server: Server
  let url: string
  const token = 'secret-token'

  before(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.on('data', chunk => { body += String(chunk) })
      req.on('end', () => {
        const reply = (status: number, value: unknown): void => { res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value)) }
        if (req.url !== '/v1/call' || req.method !== 'POST') { reply(404, { error: 'no such endpoint' }); return }
        if (req.headers.authorization !== `Bearer ${token}`) { reply(401, { error: 'missing or wrong token' }); return }
        let parsed: unknown
        try { parsed = JSON.parse(body) } catch { reply(400, { error: 'body is not JSON' }); return }
        callHandler(caller, parsed).then(({ status, body }) => { reply(status, body) }, () => { reply(500, { error: 'handler failed' }) })
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => { await new Promise(resolve => server.close(resolve)) })

  it('calls a cell through POST /v1/call with a typed proxy', async () => {
    const counter = connect({ url, token }).cell<Counter>('shop/counter')
    assert.equal(await counter.increment(5), 5)
    assert.equal(await counter.get(), 5)
    const last = calls.at(-1)
    assert.equal(last?.method, 'get')
    assert.match(last?.messageId ?? '', /^[0-9a-f]{32}$/)
    const id = newMessageId()
    await counter.$with({ messageId: id }).increment(1)
    assert.equal(calls.at(-1)?.messageId, id)
  })

  it('maps errors to one-line messages with codes and HTTP statuses', async () => {
    await assert.rejects(connect({ url, token }).cell<Counter>('shop/nothing').get(), (err: Error) => err instanceof MessagingError && err.code === 'unknown-address')
    await assert.rejects(connect({ url, token }).call('shop/counter', 'nope'), /unknown method "nope"/)
    await assert.rejects(connect({ url, token: 'wrong' }).call('shop/counter', 'get'), /missing or wrong token/)
    await assert.rejects(connect({ url: 'http://127.0.0.1:1', token }).call('shop/counter', 'get'), (err: Error) => err instanceof MessagingError && err.code === 'unreachable')
    assert.deepEqual(await callHandler(caller, null), { status: 400, body: { error: 'body must be a JSON object { address, method, args }' } })
    assert.equal((await callHandler(caller, { address: 'shop/counter', method: 'get', args: 'x' })).status, 400)
    assert.equal((await callHandler(caller, { address: 'shop/counter', method: '' })).status, 400)
    assert.equal((await callHandler(caller, { address: 'shop/counter', method: 'get', messageId: 'short' })).status, 400)
    assert.equal((await callHandler(caller, { address: 'shop/x', method: 'get' })).status, 404)
    assert.deepEqual(await callHandler(caller, { address: 'shop/counter', method: 'get' }), { status: 200, body: { result: counts.get('shop/counter') } })
  })

  it('a proxy is not a thenable and refuses bad addresses', async () => {
    const counter = connect(caller).cell<Counter>('shop/counter')
    assert.equal((counter as unknown as { then?: unknown }).then, undefined)
    assert.equal(await counter.get(), counts.get('shop/counter'))
    assert.throws(() => connect(caller).cell('shop'), /invalid cell address/)
  })

  it('the static directory resolves exact addresses and balances app/cell over replicas', () => {
    const dir = createStaticDirectory({ 'shop/counter#0': 'peerA', 'shop/counter#1': 'peerB' })
    assert.deepEqual(dir.resolve('shop/counter#0'), { peer: 'peerA', epoch: 1 })
    const seen = new Set([0, 1, 2, 3].map(() => dir.resolve('shop/counter')?.peer))
    assert.deepEqual([...seen].sort(), ['peerA', 'peerB'])
    dir.set('shop/counter#0', 'peerC')
    assert.deepEqual(dir.resolve('shop/counter#0'), { peer: 'peerC', epoch: 2 })
    dir.delete('shop/counter#1')
    dir.delete('shop/counter#0')
    assert.equal(dir.resolve('shop/counter'), undefined)
    assert.throws(() => dir.set('nope', 'peer'), /invalid cell address/)
  })

  it('the dedupe window answers retries once, waits for a running first try, and is bounded by count and age', () => {
    let now = 0
    const window = new DedupeWindow({ maxEntries: 3, ttlMs: 1000, now: () => now })
    const got: DedupeResult[] = []
    assert.equal(window.begin('a', r => got.push(r)), 'run')
    assert.equal(window.begin('a', r => got.push(r)), 'wait')
    assert.equal(got.length, 0)
    window.finish('a', { ok: true, text: '1' })
    assert.deepEqual(got, [{ ok: true, text: '1' }])
    assert.equal(window.begin('a', r => got.push(r)), 'wait')
    assert.equal(got.length, 2)
    // not executed (e.g. mailbox full): forgotten, so a retry runs
    window.begin('b', () => {})
    window.finish('b', { ok: false, text: 'busy' }, false)
    assert.equal(window.begin('b', () => {}), 'run')
    window.finish('b', { ok: true, text: '2' })
    // count bound: the oldest go first
    for (const key of ['c', 'd', 'e']) { window.begin(key, () => {}); window.finish(key, { ok: true, text: key }) }
    assert.equal(window.size, 3)
    assert.equal(window.begin('a', () => {}), 'run')
    window.finish('a', { ok: true, text: '1' })
    // age bound
    now += 5000
    assert.equal(window.begin('c', () => {}), 'run')
    assert.equal(window.size, 1)
  })
})
