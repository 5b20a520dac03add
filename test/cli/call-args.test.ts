// `stem call` parses its arguments within the JSON bounds before it contacts any node.
import assert from 'node:assert/strict'
import { stem } from '../support/stem-process.js'

describe('stem call arguments', function () {
  this.timeout(60_000)

  it('refuses an argument nested 60,000 (or 5,000) levels deep with one line and exit 2, before contacting a node', async () => {
    // one argv string is at most 128 KiB (Linux MAX_ARG_STRLEN): 60,000 levels is about as deep as a shell can pass
    for (const depth of [60_000, 5_000]) {
      const r = await stem(['call', 'shop/counter', 'increment', '['.repeat(depth) + ']'.repeat(depth), '--api', '127.0.0.1:9'])
      assert.equal(r.code, 2, r.stderr)
      assert.equal(r.stderr, 'stem: argument 1 is nested too deeply: more than 1000 levels\n')
    }
  })
})
