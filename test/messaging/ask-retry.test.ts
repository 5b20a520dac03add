import assert from 'node:assert/strict'
import { askUntilDeadline } from '../../src/messaging/ask-retry.js'
import { MessagingError } from '../../src/messaging/errors.js'
import type { MessagingErrorCode } from '../../src/messaging/errors.js'
import { callHandler } from '../../src/messaging/call-client.js'
import { connect } from '../../src/messaging/sdk.js'
import type { CallOptions, CellCaller } from '../../src/messaging/sdk.js'

/** a caller whose instance is away (failing with `code`) until `backAt` (ms since the epoch) */
function failingOver (code: MessagingErrorCode, backAt: number): CellCaller & { asks: CallOptions[] } {
  const asks: CallOptions[] = []
  return {
    asks,
    async ask (_address, _method, _args, options = {}) {
      asks.push(options)
      if (Date.now() < backAt) throw new MessagingError(code, `cell is ${code}`)
      return 42
    }
  }
}

describe('asks wait for a failing-over cell within their deadline', () => {
  it('retries "not here" and "unreachable" with the same message id until the cell answers', async () => {
    for (const code of ['not-here', 'unreachable'] as const) {
      const caller = failingOver(code, Date.now() + 600)
      const id = 'ab'.repeat(16)
      assert.equal(await askUntilDeadline(caller, 'shop/counter#0', 'get', [], { messageId: id, deadline: Date.now() + 5000 }), 42)
      assert.ok(caller.asks.length >= 3, `${caller.asks.length} asks`)
      assert.deepEqual(new Set(caller.asks.map(a => a.messageId)), new Set([id]))
    }
  })

  it('gives up at the deadline with the last failure, and at once on other failures', async () => {
    const away = failingOver('not-here', Infinity)
    const started = Date.now()
    await assert.rejects(askUntilDeadline(away, 'shop/counter#0', 'get', [], { messageId: 'cd'.repeat(16), deadline: started + 500 }), /cell is not-here/)
    assert.ok(Date.now() - started < 1500)
    for (const code of ['unknown-address', 'remote', 'timeout', 'busy'] as const) {
      const caller = failingOver(code, Infinity)
      await assert.rejects(askUntilDeadline(caller, 'shop/counter#0', 'get', [], { messageId: 'ef'.repeat(16), deadline: Date.now() + 5000 }), new RegExp(`cell is ${code}`))
      assert.equal(caller.asks.length, 1)
    }
  })

  it('stops retrying when the signal aborts', async () => {
    const caller = failingOver('unreachable', Infinity)
    const signal = AbortSignal.timeout(300)
    await assert.rejects(askUntilDeadline(caller, 'shop/counter#0', 'get', [], { messageId: '01'.repeat(16), deadline: Date.now() + 10_000, signal }), /cell is unreachable/)
  })

  it('the SDK and POST /v1/call answer from the new primary instead of failing', async () => {
    const viaSdk = failingOver('not-here', Date.now() + 500)
    assert.equal(await connect(viaSdk).call('shop/counter#0', 'get', [], { deadline: Date.now() + 5000 }), 42)
    const viaApi = failingOver('unreachable', Date.now() + 500)
    const answer = await callHandler(viaApi, { address: 'shop/counter#0', method: 'get', deadline: Date.now() + 5000 })
    assert.deepEqual(answer, { status: 200, body: { result: 42 } })
    assert.equal(new Set(viaApi.asks.map(a => a.messageId)).size, 1)
  })
})
