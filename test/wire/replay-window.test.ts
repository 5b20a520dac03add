import assert from 'node:assert/strict'
import { ReplayWindow } from '../../src/wire/replay-window.js'

describe('wire/replay-window', () => {
  it('accepts new numbers once, in any order inside the window', () => {
    const w = new ReplayWindow(64)
    assert.equal(w.accept(10n), 'ok')
    assert.equal(w.accept(10n), 'replayed')
    assert.equal(w.accept(8n), 'ok')
    assert.equal(w.accept(9n), 'ok')
    assert.equal(w.accept(8n), 'replayed')
    assert.equal(w.accept(12n), 'ok')
    assert.equal(w.accept(11n), 'ok')
    assert.equal(w.accept(11n), 'replayed')
  })

  it('refuses numbers that fell out of the window, and forgets slots it slides over', () => {
    const w = new ReplayWindow(64)
    assert.equal(w.accept(100n), 'ok')
    assert.equal(w.accept(36n), 'too-old')
    assert.equal(w.accept(37n), 'ok') // the window covers 37..100
    assert.equal(w.accept(37n + 64n), 'ok')
    assert.equal(w.accept(164n), 'ok') // slides by exactly 64: slot of 100 is reused
    assert.equal(w.check(100n), 'too-old')
    assert.equal(w.accept(163n), 'ok')
    assert.equal(w.accept(1000n), 'ok') // a jump past the whole window clears it
    assert.equal(w.accept(999n), 'ok')
    assert.equal(w.accept(999n), 'replayed')
  })

  it('check does not record', () => {
    const w = new ReplayWindow()
    assert.equal(w.check(5n), 'ok')
    assert.equal(w.check(5n), 'ok')
    assert.equal(w.accept(5n), 'ok')
    assert.equal(w.check(5n), 'replayed')
  })

  it('matches a naive set model on random traffic', () => {
    const w = new ReplayWindow(128)
    const seen = new Set<bigint>()
    let highest = 0n
    let x = 12345
    for (let i = 0; i < 20000; i++) {
      x = (x * 1103515245 + 12345) & 0x7fffffff
      const seq = BigInt(Math.max(1, Number(highest) - 150 + (x % 170)))
      const expected = seq > highest ? 'ok' : highest - seq >= 128n ? 'too-old' : seen.has(seq) ? 'replayed' : 'ok'
      assert.equal(w.accept(seq), expected, `seq ${seq} after highest ${highest}`)
      if (expected === 'ok') { seen.add(seq); if (seq > highest) highest = seq }
    }
  })
})
