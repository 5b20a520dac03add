// The node's pure reminder logic: reading the table out of a state text (untrusted: it
// comes from an isolate or a disk), firing order, what is in flight, retry pause.
import { describe, it } from 'mocha'
import assert from 'node:assert/strict'
import { checkReminders, remindersOfState, remindersTail, ReminderQueue, MAX_REMINDERS, MAX_REMINDER_ATTEMPTS, REMINDER_RETRY_MS, REMINDERS_FIELD } from '../../src/cells/reminders.js'
import type { Reminder } from '../../src/cells/reminders.js'

const r = (id: string, due: number, method = 'ring', args = '[]'): Reminder => ({ id, due, method, args })
const state = (reminders: unknown, fields: Record<string, unknown> = { n: 1 }): string => JSON.stringify({ ...fields, [REMINDERS_FIELD]: reminders })

describe('cells: reminder queue (pure)', () => {
  it('reads no reminders from a state without the field, and does not parse it', () => {
    assert.deepEqual(remindersOfState('{"n":1}'), { reminders: [], problems: [] })
    // not JSON at all, but without the field name it is not looked at
    assert.deepEqual(remindersOfState('{"n":'), { reminders: [], problems: [] })
  })

  it('the tail of a state changes with its reminders, not with its other fields', () => {
    const table = [r('a', 1)]
    assert.equal(remindersTail(state(table, { n: 1 })), remindersTail(state(table, { n: 2, more: 'x' })))
    assert.notEqual(remindersTail(state(table)), remindersTail(state([r('a', 2)])))
    assert.equal(remindersTail('{"n":1}'), '')
    // a nested value holding the name has a different tail from the field's
    assert.notEqual(remindersTail(JSON.stringify({ x: { [REMINDERS_FIELD]: table } })), remindersTail(state(table, {})))
  })

  it('orders by due time, then id', () => {
    const { reminders, problems } = remindersOfState(state([r('b', 20), r('c', 10), r('a', 20)]))
    assert.deepEqual(problems, [])
    assert.deepEqual(reminders.map(x => x.id), ['c', 'a', 'b'])
  })

  it('names and skips malformed entries, keeps the good ones', () => {
    const { reminders, problems } = checkReminders([
      r('ok', 5),
      null,
      [1],
      { id: 'bad id', due: 1, method: 'm', args: '[]' },
      { id: 'x'.repeat(65), due: 1, method: 'm', args: '[]' },
      { id: 'd1', due: -1, method: 'm', args: '[]' },
      { id: 'd2', due: 1.5, method: 'm', args: '[]' },
      { id: 'd3', due: '5', method: 'm', args: '[]' },
      { id: 'd4', due: 9e15, method: 'm', args: '[]' },
      { id: 'm1', due: 1, method: '', args: '[]' },
      { id: 'm2', due: 1, method: 'a\nb', args: '[]' },
      { id: 'm3', due: 1, method: 'x'.repeat(201), args: '[]' },
      { id: 'a1', due: 1, method: 'm', args: [] },
      { id: 'a2', due: 1, method: 'm', args: '{}' },
      r('ok', 7)
    ])
    assert.deepEqual(reminders, [r('ok', 5)])
    assert.equal(problems.length, 14)
    assert.match(problems[0], /stem:reminders\[1\] is not an object/)
    assert.match(problems[2], /has no valid id/)
    assert.match(problems[5], /\(d2\) has no valid due time/)
    assert.match(problems[9], /\(m2\) has no valid method name/)
    assert.match(problems[12], /\(a2\) has no argument list/)
    assert.match(problems[13], /repeats id ok/)
  })

  it('refuses a field that is not an array, and a state that is not JSON', () => {
    assert.deepEqual(remindersOfState(state({ id: 'a' })), { reminders: [], problems: ['stem:reminders is not an array'] })
    assert.deepEqual(remindersOfState(`{"${REMINDERS_FIELD}":[`).problems, ['state is not JSON text'])
    // the name inside a nested value is not the field
    assert.deepEqual(remindersOfState(JSON.stringify({ x: { [REMINDERS_FIELD]: [r('a', 1)] } })), { reminders: [], problems: [] })
  })

  it('keeps at most 1,000 (the earliest) from a forged table', () => {
    const many = Array.from({ length: MAX_REMINDERS + 5 }, (_, i) => r(`r${i}`, 10_000 - i))
    const { reminders, problems } = checkReminders(many)
    assert.equal(reminders.length, MAX_REMINDERS)
    assert.equal(reminders[0].id, `r${MAX_REMINDERS + 4}`)
    assert.match(problems[0], /holds 1005 reminders, limit 1000: the latest 5 are ignored/)
  })

  it('takes what is due, in order, once, and up to a maximum', () => {
    const q = new ReminderQueue()
    q.replace([r('a', 10), r('b', 20), r('c', 30), r('d', 100)])
    assert.equal(q.nextAt(), 10)
    assert.deepEqual(q.take(5, 10), [])
    assert.deepEqual(q.take(30, 2).map(x => x.id), ['a', 'b'])
    // a and b are being fired: not taken again, the next is c
    assert.equal(q.nextAt(), 30)
    assert.deepEqual(q.take(30, 10).map(x => x.id), ['c'])
    assert.equal(q.nextAt(), 100)
    assert.deepEqual(q.take(1000, 10).map(x => x.id), ['d'])
    assert.equal(q.nextAt(), undefined)
  })

  it('a firing that consumed its reminder leaves the queue; one that did not is retried after a pause', () => {
    const q = new ReminderQueue()
    q.replace([r('a', 10), r('b', 10)])
    assert.equal(q.take(10, 10).length, 2)
    // the state after a's firing no longer holds it
    q.replace([r('b', 10)])
    q.settled('a', 50)
    assert.equal(q.nextAt(), undefined)
    // b's firing failed (its cell crashed): still pending, retried after the pause
    q.settled('b', 60)
    assert.equal(q.nextAt(), 60 + REMINDER_RETRY_MS)
    assert.deepEqual(q.take(61, 10), [])
    assert.deepEqual(q.take(60 + REMINDER_RETRY_MS, 10).map(x => x.id), ['b'])
  })

  it('a reminder whose firings keep failing is exhausted after MAX_REMINDER_ATTEMPTS; one that fires resets nothing else', () => {
    const q = new ReminderQueue()
    q.replace([r('a', 10), r('b', 10)])
    let now = 10
    for (let i = 0; i < MAX_REMINDER_ATTEMPTS; i++) {
      assert.equal(q.exhausted('a'), false)
      assert.ok(q.take(now, 1).some(x => x.id === 'a') || q.take(now, 2).some(x => x.id === 'a'))
      q.settled('a', now)
      q.settled('b', now)
      now += REMINDER_RETRY_MS
    }
    assert.equal(q.exhausted('a'), true)
    // b fired (gone from the state): its failures are forgotten
    q.replace([r('a', 10)])
    q.take(now, 10)
    q.settled('b', now)
    assert.equal(q.exhausted('b'), false)
  })

  it('a cancelled reminder (gone from the new state) is never taken', () => {
    const q = new ReminderQueue()
    q.replace([r('a', 10), r('b', 20)])
    q.replace([r('b', 20)])
    assert.deepEqual(q.take(100, 10).map(x => x.id), ['b'])
    q.clear()
    assert.equal(q.size, 0)
    assert.equal(q.nextAt(), undefined)
  })
})
