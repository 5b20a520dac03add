// Copies no longer placed on a node, kept a while for a recovery (make before break).
import assert from 'node:assert/strict'
import { KeptCopies } from '../../src/topology/kept-copies.js'
import { waitFor } from '../support/wait.js'

describe('kept copies', () => {
  it('keeps a copy until its time is up, then expires it once; taken or cleared copies never expire', async () => {
    const expired: string[] = []
    const kept = new KeptCopies<{ version: number }>(50, address => { expired.push(address) })
    kept.keep('shop/a#0', { version: 3 })
    kept.keep('shop/a#1', { version: 4 })
    kept.keep('other/b#0', { version: 5 })
    assert.deepEqual(kept.get('shop/a#0'), { version: 3 })
    assert.deepEqual(kept.ofApp('shop').map(([address]) => address).sort(), ['shop/a#0', 'shop/a#1'])
    // kept again: the newer copy, with its own time
    kept.keep('shop/a#0', { version: 6 })
    assert.deepEqual(kept.get('shop/a#0'), { version: 6 })
    assert.equal(kept.delete('shop/a#1'), true)
    assert.equal(kept.delete('shop/a#1'), false)
    await waitFor(() => expired.length === 2, { what: 'the two copies left to expire' })
    assert.deepEqual(expired.sort(), ['other/b#0', 'shop/a#0'])
    assert.equal(kept.get('shop/a#0'), undefined)
    kept.keep('shop/a#2', { version: 1 })
    kept.clear()
    assert.equal(kept.get('shop/a#2'), undefined)
    // a copy cleared does not expire later
    const later = new KeptCopies<{ version: number }>(20, address => { expired.push(address) })
    later.keep('shop/a#3', { version: 1 })
    await waitFor(() => expired.includes('shop/a#3'), { what: 'a control copy to expire' })
    assert.ok(!expired.includes('shop/a#2'))
  })
})
