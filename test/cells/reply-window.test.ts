// The reply window's bounds and its codec: what travels with a cell's state to clones and
// to disk must be refused with a one-line reason when malformed, oversized or truncated.
import assert from 'node:assert/strict'
import { decodeReplyWindow, maxEncodedChars, MAX_RESULT_CHARS, ReplyWindow } from '../../src/cells/reply-window.js'

const KEY = '12D3KooWExample/00112233445566778899aabbccddeeff'
/** digests as the codec writes them (22 base64url characters) */
const D = 'A'.repeat(22)
const D2 = 'b'.repeat(21) + '_'

describe('cells: the reply window', () => {
  it('records results by key and round-trips through its codec', () => {
    const w = new ReplyWindow()
    w.record(KEY, '5', 1000)
    w.record('peer/2', '"x"\n{"response":{"status":201,"headers":{}}}', 1001)
    const back = decodeReplyWindow(w.encode(1002), 1002)
    assert.equal(back.get(KEY, 1002), '5')
    assert.equal(back.get('peer/2', 1002), '"x"\n{"response":{"status":201,"headers":{}}}')
    assert.equal(back.get('peer/3', 1002), undefined)
    assert.equal(decodeReplyWindow('[]').size, 0)
  })

  it('is bounded by count, age and characters, the oldest first', () => {
    const bounds = { maxEntries: 3, maxAgeMs: 1000, maxChars: 10 }
    const w = new ReplyWindow(bounds)
    for (let i = 0; i < 5; i++) w.record(`k/${i}`, '1', i)
    assert.equal(w.size, 3)
    assert.equal(w.get('k/0', 5), undefined)
    assert.equal(w.get('k/4', 5), '1')
    // past its age an entry is gone
    assert.equal(w.get('k/4', 1005), undefined)
    const big = new ReplyWindow(bounds)
    big.record('a/1', '123456', 0)
    big.record('a/2', '123456', 1)
    assert.equal(big.get('a/1', 2), undefined, 'the older entry goes once the characters pass the bound')
    assert.equal(big.get('a/2', 2), '123456')
    // decoding drops what is past the age
    assert.equal(decodeReplyWindow(JSON.stringify([[D, 0, '1'], [D2, 5000, '2']]), 5500, bounds).size, 1)
  })

  it('keeps a result too long to keep as "ran" (null), never as a result to run again', () => {
    const w = new ReplyWindow()
    w.record(KEY, 'x'.repeat(MAX_RESULT_CHARS + 1), 1)
    assert.equal(w.get(KEY, 2), null)
    assert.equal(decodeReplyWindow(w.encode(2), 2).get(KEY, 2), null)
  })

  it('refuses malformed, truncated, oversized and forged windows with one line', () => {
    const now = 10_000
    const good = JSON.stringify([[D, 1, '5'], [D2, 2, null]])
    assert.equal(decodeReplyWindow(good, now).size, 2)
    // the keys themselves (sender peer ids) are not in what travels
    const w = new ReplyWindow()
    w.record(KEY, '5', now)
    assert.ok(!w.encode(now).includes('12D3KooW'))
    const cases: Array<[string, RegExp]> = [
      [good.slice(0, good.length - 3), /not JSON \(truncated\?\)/],
      ['{"a":1}', /not a JSON array/],
      ['[1]', /entry 0 is not \[key, time, text\]/],
      [`[["${D}",1]]`, /entry 0 is not \[key, time, text\]/],
      ['[["",1,"1"]]', /entry 0: key is not a 22-character digest/],
      [`[["${D.slice(1)} ",1,"1"]]`, /entry 0: key is not/],
      [JSON.stringify([[D + 'A', 1, '1']]), /entry 0: key is not/],
      ['[["k/00112233445566778899aabbccddeeff",1,"1"]]', /entry 0: key is not/],
      [`[["${D}",1.5,"1"]]`, /entry 0: time is not/],
      [`[["${D}",-1,"1"]]`, /entry 0: time is not/],
      [`[["${D}",5,"1"],["${D2}",4,"1"]]`, /entry 1: time is not a whole number of ms in order/],
      [`[["${D}",1,5]]`, /entry 0: result is not text/],
      [JSON.stringify([[D, 1, 'x'.repeat(MAX_RESULT_CHARS + 1)]]), /entry 0: result is not text of at most/],
      [JSON.stringify(Array.from({ length: 257 }, () => [D, 1, '1'])), /257 entries, at most 256/],
      [JSON.stringify(Array.from({ length: 20 }, () => [D, 1, 'x'.repeat(60_000)])), /results exceed/],
      [' '.repeat(maxEncodedChars() + 1), /too large/]
    ]
    for (const [text, reason] of cases) {
      assert.throws(() => decodeReplyWindow(text, now), (err: Error) => {
        assert.match(err.message, reason)
        assert.ok(!err.message.includes('\n'), err.message)
        return true
      }, text.slice(0, 60))
    }
  })
})
