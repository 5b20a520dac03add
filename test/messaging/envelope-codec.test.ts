import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CellBatch, CellEnvelope, ReplyStatus } from '../../src/wire/proto/cell.js'
import { encodeBatch, encodeEnvelope } from '../../src/messaging/envelope-codec.js'

const texts = ['', 'a', 'shop/counter#0', 'ü€𝄞 mixed utf8', 'x'.repeat(127), 'y'.repeat(128), 'z'.repeat(20_000), JSON.stringify(['\ud800'])]
const numbers = [0n, 1n, 127n, 128n, 16_383n, 16_384n, BigInt(Date.now()), 2n ** 53n + 7n, 2n ** 64n - 1n]

function same (message: CellEnvelope): void {
  const expected = CellEnvelope.encode(message)
  const actual = encodeEnvelope(message)
  assert.deepEqual(Buffer.from(actual).toString('hex'), Buffer.from(expected).toString('hex'))
  assert.deepEqual(CellEnvelope.decode(new Uint8Array(actual)), CellEnvelope.decode(expected))
}

describe('messaging/envelope-codec', () => {
  it('encodes asks exactly as protons does', () => {
    for (const text of texts) {
      for (const deadline of numbers) {
        same({ ask: { id: randomBytes(16), to: text, method: 'increment', args: text, deadline, from: text } })
      }
    }
    same({ ask: { id: new Uint8Array(0), to: '', method: '', args: '', deadline: 0n, from: '' } })
  })

  it('encodes tells exactly as protons does', () => {
    for (const text of texts) {
      for (const hops of [0, 1, 127, 128, 300, 2 ** 32 - 1]) {
        same({ tell: { to: 'a/b#0', method: text, args: text, from: text, hops } })
      }
    }
  })

  it('encodes replies exactly as protons does', () => {
    for (const status of [ReplyStatus.OK, ReplyStatus.ERROR, ReplyStatus.NOT_HERE, ReplyStatus.BUSY]) {
      for (const epoch of numbers) {
        for (const text of texts) same({ reply: { id: randomBytes(16), status, text, hint: text, epoch } })
      }
    }
  })

  it('falls back to protons for transforms', () => {
    same({ transform: { id: randomBytes(16), address: 'a/b#0', bundle: randomBytes(32), owner: randomBytes(36), memory: 64n, timeout: 100, mailbox: 10, state: '{}', version: 3n, replace: true, deadline: 5n } })
  })

  it('encodes batches exactly as protons does, empty elements included', () => {
    const cases = [[], [new Uint8Array(0)], [randomBytes(1), randomBytes(200), new Uint8Array(0), randomBytes(70_000)]]
    for (const messages of cases) {
      assert.equal(Buffer.from(encodeBatch(messages)).toString('hex'), Buffer.from(CellBatch.encode({ messages })).toString('hex'))
    }
  })
})
