import { strict as assert } from 'node:assert'
import { createDashboardFeed, createRateMeter, type DashboardEvent } from '../../src/dashboard/index.js'

describe('dashboard feed', () => {
  const base = { self: () => ({ id: 'me', mesh: 'm', addrs: [] }), nodes: () => [], apps: () => [], cells: () => [] }

  it('keeps a bounded log of one-line events and notifies subscribers', () => {
    let t = 1000
    const feed = createDashboardFeed({ ...base, maxEvents: 3, now: () => t++ })
    const seen: DashboardEvent[] = []
    const off = feed.subscribe(e => seen.push(e))
    for (let i = 0; i < 5; i++) feed.record('info', `event ${i}`)
    assert.deepEqual(feed.snapshot().events.map(e => e.text), ['event 2', 'event 3', 'event 4'])
    assert.equal(seen.length, 5)
    const long = feed.record('info', 'a\nb  ' + 'x'.repeat(1000))
    assert.equal(long.text.length, 300)
    assert.ok(long.text.startsWith('a b x'))
    assert.ok(long.text.endsWith('…'))
    feed.changed('nodes', 'cells')
    feed.changed()
    assert.deepEqual(seen.slice(-2), [{ type: 'changed', parts: ['nodes', 'cells'] }, { type: 'changed' }])
    off()
    feed.record('info', 'after')
    assert.equal(seen.length, 8)
  })

  it('a listener that throws does not stop the others', () => {
    const errors: unknown[] = []
    const feed = createDashboardFeed({ ...base, onListenerError: e => errors.push(e) })
    let reached = 0
    feed.subscribe(() => { throw new Error('boom') })
    feed.subscribe(() => { reached++ })
    feed.record('info', 'x')
    assert.equal(reached, 1)
    assert.equal(errors.length, 1)
  })

  it('refuses a bad maxEvents', () => {
    assert.throws(() => createDashboardFeed({ ...base, maxEvents: 0 }), /maxEvents must be a whole number/)
  })
})

describe('rate meter', () => {
  it('averages marks over a sliding window of seconds', () => {
    let now = 100_000
    const meter = createRateMeter({ windowSeconds: 4, now: () => now })
    assert.equal(meter.rate('a'), 0)
    meter.mark('a', 4)
    now += 1000
    meter.mark('a', 4)
    assert.equal(meter.rate('a'), 2)
    now += 3000 // the first second left the window
    assert.equal(meter.rate('a'), 1)
    now += 10_000
    assert.equal(meter.rate('a'), 0)
    meter.mark('a')
    assert.equal(meter.rate('a'), 0.25)
    meter.forget('a')
    assert.equal(meter.rate('a'), 0)
    assert.throws(() => createRateMeter({ windowSeconds: 0 }), /windowSeconds/)
  })
})
