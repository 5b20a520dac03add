// The stall verdict's pure logic: a peer is judged stalled only after stallMs of silence
// over enough probe rounds, one probe at a time, and our own stalls blame no one.
import assert from 'node:assert/strict'
import { StallWatch } from '../../src/node/stall-watch.js'

describe('node: stall watch', () => {
  it('probes each watched peer once at a time and judges a silent one stalled after stallMs and 3 rounds', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    assert.deepEqual(w.tick(['a', 'b'], 0), { probe: ['a', 'b'], stalled: [] })
    w.settled('a', true, 10)
    // b's probe is still in flight: only a is probed again
    assert.deepEqual(w.tick(['a', 'b'], 500), { probe: ['a'], stalled: [] })
    w.settled('a', true, 510)
    assert.deepEqual(w.tick(['a', 'b'], 1000), { probe: ['a'], stalled: [] })
    w.settled('a', true, 1010)
    // 1500 ms of silence is not more than stallMs
    assert.deepEqual(w.tick(['a', 'b'], 1500).stalled, [])
    w.settled('a', true, 1510)
    assert.deepEqual(w.tick(['a', 'b'], 2000), { probe: ['a'], stalled: [{ id: 'b', silentMs: 2000 }] })
    // reported once: b is forgotten, and watched afresh if it is still listed
    assert.deepEqual(w.tick(['a', 'b'], 2500).stalled, [])
  })

  it('does not blame a peer for our own stall: long silence over too few rounds is no verdict', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    w.tick(['a'], 0)
    // this process froze for 5 s: its next round runs late, the probe is unanswered so far
    assert.deepEqual(w.tick(['a'], 5000).stalled, [])
    // the answer that waited in the socket arrives as the loop resumes
    w.settled('a', true, 5001)
    assert.deepEqual(w.tick(['a'], 5500), { probe: ['a'], stalled: [] })
    // no answer after the late round: the silence counts from the wake, so the verdict comes
    // only once stallMs more have passed without one (not three rounds after the wake, on
    // the silence of the freeze: a node woken from a stall blamed every peer so)
    const v = new StallWatch({ stallMs: 1500, minRounds: 3 })
    v.tick(['a'], 0)
    for (const t of [5000, 5500, 6000, 6500]) assert.deepEqual(v.tick(['a'], t).stalled, [], `at ${t}`)
    assert.equal(v.overdue(6500).length, 0)
    assert.deepEqual(v.tick(['a'], 7000).stalled, [{ id: 'a', silentMs: 2000 }])
  })

  it('a round that comes late (our event loop blocked over stallMs/2) starts the silences afresh; rounds on time do not', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    w.tick(['a'], 0)
    w.settled('a', true, 10)
    w.tick(['a'], 500)
    w.tick(['a'], 1000)
    assert.equal(w.silentMs('a', 1000), 990)
    // 800 ms since the round before: blocked
    w.tick(['a'], 1800)
    assert.equal(w.silentMs('a', 1800), 0)
    w.tick(['a'], 2300)
    assert.equal(w.silentMs('a', 2300), 500)
  })

  it('a round more than stallMs after the one before says this node was cut off (the caller reconnects); later rounds, and shorter blocks, do not', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    assert.equal(w.tick(['a'], 0).cutOff, undefined, 'the first round')
    assert.equal(w.tick(['a'], 500).cutOff, undefined)
    // blocked 1 s: the silences start afresh, but the peers have not judged this node yet
    assert.equal(w.tick(['a'], 1500).cutOff, undefined)
    // frozen 4 s (SIGSTOP): its peers judged it stalled after 1.5 s and cut it off
    assert.equal(w.tick(['a'], 5500).cutOff, 4000)
    assert.equal(w.tick(['a'], 6000).cutOff, undefined, 'once')
  })

  it('a late round starts a grace of graceMs in which a failed ping condemns no one; rounds on time start none', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3, graceMs: 6000 })
    w.tick(['a'], 0)
    w.tick(['a'], 500)
    assert.equal(w.inGrace(500), false, 'no freeze yet')
    // blocked 2 s: a whole-machine freeze, every node redials
    w.tick(['a'], 2500)
    assert.equal(w.inGrace(2500), true)
    w.tick(['a'], 3000)
    assert.equal(w.inGrace(8499), true)
    assert.equal(w.inGrace(8500), false, 'graceMs after the wake')
    assert.equal(new StallWatch({ stallMs: 1000 }).inGrace(0), false)
  })

  it('a probe that ended without an answer is sent again next round; an answer resets the silence', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    w.tick(['a'], 0)
    w.settled('a', false, 400)
    assert.deepEqual(w.tick(['a'], 500).probe, ['a'])
    w.settled('a', false, 900)
    const back = w.tick(['a'], 1000)
    assert.deepEqual([back.probe, back.stalled], [['a'], []])
    w.settled('a', true, 1400)
    assert.deepEqual(w.tick(['a'], 1500), { probe: ['a'], stalled: [] })
    assert.deepEqual(w.tick(['a'], 2000).stalled, [])
    assert.deepEqual(w.tick(['a'], 2500).stalled, [])
    assert.deepEqual(w.tick(['a'], 3000).stalled, [{ id: 'a', silentMs: 1600 }])
  })

  it('forgets peers no longer watched, and ignores answers from them', () => {
    const w = new StallWatch({ stallMs: 100, minRounds: 1 })
    w.tick(['a'], 0)
    w.tick([], 50)
    w.settled('a', true, 60)
    // a comes back as a new peer: its silence counts from now, not from its first probe
    assert.deepEqual(w.tick(['a'], 1000).probe, ['a'])
    assert.deepEqual(w.tick(['a'], 1040).stalled, [])
    assert.deepEqual(w.tick(['a'], 1080).stalled, [])
    assert.deepEqual(w.tick(['a'], 1101).stalled, [{ id: 'a', silentMs: 101 }])
  })

  it('tells how long a watched peer has been silent (what makes it suspect before the verdict)', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    assert.equal(w.silentMs('a', 0), 0)
    w.tick(['a'], 0)
    assert.equal(w.silentMs('a', 800), 800)
    w.settled('a', true, 900)
    assert.equal(w.silentMs('a', 1000), 100)
    w.tick([], 1100)
    assert.equal(w.silentMs('a', 5000), 0)
  })

  it('judges a silent peer between rounds once its silence passes stallMs, counting no round: the verdict need not wait for the next round', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    w.tick(['a', 'b'], 0)
    w.settled('a', true, 10)
    w.settled('b', true, 10)
    // b stalls after its answer at 10; a answers every round
    for (const t of [500, 1000, 1500]) {
      w.tick(['a', 'b'], t)
      w.settled('a', true, t + 10)
    }
    assert.equal(w.dueAt(), 1511, 'b passes stallMs at 10 + 1500 + 1')
    assert.deepEqual(w.overdue(1510), [])
    assert.deepEqual(w.overdue(1511), [{ id: 'b', silentMs: 1501 }])
    // reported once; the round at 2000 would have been the verdict before
    assert.deepEqual(w.tick(['a'], 2000).stalled, [])
    assert.equal(w.dueAt(), 1510 + 1501)
  })

  it('between rounds still blames no one for our own stall: overdue counts no round', () => {
    const w = new StallWatch({ stallMs: 1500, minRounds: 3 })
    w.tick(['a'], 0)
    w.settled('a', true, 10)
    // this process froze for 5 s: the timer of the verdict fires late, one round has run
    w.tick(['a'], 5000)
    assert.deepEqual(w.overdue(5001), [])
    assert.deepEqual(w.overdue(5002), [])
    assert.equal(new StallWatch().dueAt(), undefined)
  })
})

