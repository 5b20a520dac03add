// The JavaScript that runs first in every cell isolate, before the cell's module.
// It receives the host callback and bounds as closure arguments ($0…$3), so cell code can
// never reach them: the only thing it leaves on globalThis is the frozen `stem` object.
// Everything crosses the isolate boundary as primitive strings/numbers: no host object,
// Reference or promise is ever handed to cell code (isolated-vm's known pitfalls).
// It captures every intrinsic it needs before cell code runs and calls them with
// Reflect.apply, never through a prototype a cell can change: no method call on a string,
// array or RegExp (String#split/replace look up Symbol.split/replace, RegExp methods look
// up `exec`, writing an array index runs setters on Array.prototype), and descriptors have
// a null prototype. A cell that tampers with its own globals only breaks itself; the host
// validates everything it returns anyway (boundary.ts). It runs in strict mode, so error
// CallSites of its frames give no function or receiver.
// Resizable ArrayBuffers are hidden like WebAssembly: their memory is reserved outside the
// isolate's limit, so `new ArrayBuffer(n, { maxByteLength })` is refused.
//
// control(op, …) is returned to the host (as a Reference):
//   'bind'    (address)                   → makes the blank stem cell this cell: sets up `stem`
//   'install' (namespace, stateJson|null) → stateJson         build the instance
//   'calls'   (packed messages, softMs)   → one result record per message run, in order; a
//                                            result is 'o'/'e' + text + '\0' + stateJson, or 'p'
//                                            (pending: it stops there, one message at a time). It
//                                            also stops once softMs have passed; the host re-queues
//                                            the messages it did not run.
//   messages: records 'id\x01method\x01argsJson' joined by '\x02'; results: 'id\x01result'
//            a method '\x06' + key + '\x06' + method goes to that key of a keyed cell
//            a method '\x04' + reminder id fires that reminder (cells/reminders.ts): its method
//            runs with its arguments and { reminder, due }; a reminder no longer pending
//            (fired or cancelled) does nothing (a retried firing runs once); '\x05' + id
//            takes that reminder out unrun (its firings kept failing)
//            the method RECORD_METHOD delivers stream records (cells/streams/partition.ts):
//            args [stream, partition, gen, [[offset, key, time, record]…]]; each record past
//            the cell's cursor runs onRecord(record, meta) and moves the cursor, kept in the
//            state under CURSORS_FIELD (before the reminders): all in the message's one state;
//            it answers { applied, ms }: the records applied and the ms their onRecord took
//            CURSOR_METHOD answers the cursor of one partition, args [stream, partition]
//   'resolve' (packed answers)            → settles pending stem.ask calls
//   'flush'   ()                          → only the trailers: what the microtasks run at the
//                                            end of the previous entry produced
// To avoid a boundary crossing per ask, every entry's result ends with two trailers:
//   result + '\x03' + outgoing asks + '\x03' + finished async messages
// outgoing asks: records 'id\x01address\x01method\x01argsJson\x01t|a' joined by '\x02'
// finished:      records 'id\x01text' joined by '\x02' (text as for 'call')
// answers:       records 'askId\x01o|e\x01text[\x01status]' joined by '\x02'
// JSON.stringify escapes control characters and error texts have them replaced, so the
// separators \0-\x03 never occur inside a field.
// A result or error text may end with '\n' + a JSON trailer (see cells/reply-meta.ts): on
// errors { error: { status?, stack? } } (status: from stem.error), on results
// { response: { status, headers } } (stem.response); the host validates it and adds the
// cell and method. Answers to the cell's asks carry an error's status as a 4th field.
import { REMINDERS_FIELD, MAX_REMINDERS, MIN_REMINDER_DELAY_MS, EPOCH_WHEN_FROM } from '../reminders.js'
import { KEYED_EXPORT } from '../keys.js'
import { CURSORS_FIELD, CURSOR_METHOD, RECORD_METHOD, cursorAccepts, partitionCell, pickPartition } from '../streams/partition.js'

// Pending reminders live in a table here and in the state text under the reserved field
// REMINDERS_FIELD (last, only when there are some), so every rollback, snapshot and restore
// of the state carries them.
//
// Keyed cells (SPEC §4; the module exports KEYED_EXPORT = { idle }): this isolate is one
// shard. Each key is activated on its first message (a fresh instance of the class with
// the key's saved fields, stem.key = the key) and passivated after `idle` ms without
// messages (the instance is dropped; its fields stay as JSON text). The state text is
// { "keys": { key: fields… } } then the reminders, each reminder carrying its key, so the
// keys of a shard persist, replicate, restore and roll back together as one instance's
// state does. A shard runs one message at a time, so `currentKey` is the key of the
// message running (also across its awaits).
export const BOOTSTRAP_SOURCE = String.raw`
'use strict'
const hostLog = $0, maxBytes = $1, maxPending = $2, maxDepth = $3
let self = ''
const { keys, getPrototypeOf, getOwnPropertyDescriptor, defineProperty, freeze, hasOwn } = Object
const ObjectProto = Object.prototype, isArray = Array.isArray, stringify = JSON.stringify, parse = JSON.parse
const isFinite = Number.isFinite, apply = Reflect.apply, construct = Reflect.construct, deleteProperty = Reflect.deleteProperty
const SafePromise = Promise, PromiseProto = Promise.prototype, then = PromiseProto.then, promiseReject = Promise.reject
const SafeError = Error, SafeRangeError = RangeError, SafeTypeError = TypeError, SafeString = String
const SafeMap = Map, mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete, mapForEach = Map.prototype.forEach
const SafeWeakMap = WeakMap, wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set
const indexOf = String.prototype.indexOf, slice = String.prototype.slice, charCodeAt = String.prototype.charCodeAt
const fnToString = Function.prototype.toString, regExec = RegExp.prototype.exec, dateNow = Date.now, isInteger = Number.isInteger
const random = Math.random, floor = Math.floor, ceil = Math.ceil, numToString = Number.prototype.toString
// private RegExp objects used only through the captured exec (reads own lastIndex and internal flags only)
const STREAM_NAME = /^[a-z](?:[a-z0-9-]{0,53}[a-z0-9])?$/
const CONTROL = /[\x00-\x1f]/, CLASS = /^class\b/, REMINDER_ID = /^[A-Za-z0-9_-]{1,64}$/, HEADER_NAME = /^[!#$%&'*+.^_\x60|~0-9A-Za-z-]{1,100}$/
// errors made by stem.error (or answers to asks that carried a status) → status; stem.response objects → [status, headers, body]
const statuses = new SafeWeakMap(), responses = new SafeWeakMap()
const maxOut = 4 * maxBytes
const matches = (re, text) => apply(regExec, re, [text]) !== null
const cut = (text, from, to) => apply(slice, text, [from, to])
const find = (text, sep, from) => apply(indexOf, text, [sep, from])

function clean (text) {
  let out = '', from = 0
  for (let i = 0; i < text.length; i++) {
    if (apply(charCodeAt, text, [i]) < 32) { out += cut(text, from, i) + ' '; from = i + 1 }
  }
  return from === 0 ? text : out + cut(text, from, text.length)
}

delete globalThis.SharedArrayBuffer
delete globalThis.Atomics
delete globalThis.WebAssembly

const RealArrayBuffer = ArrayBuffer, ArrayBufferProto = ArrayBuffer.prototype
function FixedArrayBuffer (length, options) {
  if (new.target === undefined) throw new SafeTypeError("Constructor ArrayBuffer requires 'new'")
  if (options !== undefined && options !== null && options.maxByteLength !== undefined) throw new SafeRangeError('resizable ArrayBuffers are not available to cells')
  return construct(RealArrayBuffer, [length], new.target === FixedArrayBuffer ? RealArrayBuffer : new.target)
}
defineProperty(FixedArrayBuffer, 'prototype', { __proto__: null, value: ArrayBufferProto, writable: false })
defineProperty(FixedArrayBuffer, 'name', { __proto__: null, value: 'ArrayBuffer' })
defineProperty(FixedArrayBuffer, 'isView', { __proto__: null, value: RealArrayBuffer.isView, writable: true, configurable: true })
defineProperty(ArrayBufferProto, 'constructor', { __proto__: null, value: FixedArrayBuffer, writable: true, configurable: true })
defineProperty(globalThis, 'ArrayBuffer', { __proto__: null, value: FixedArrayBuffer, writable: true, configurable: true })
deleteProperty(ArrayBufferProto, 'resize')

// up: the chain of enclosing objects ({ v, up } links read as own properties: no Set or array,
// whose methods a cell could change; a null prototype would make each link a slow dictionary)
function check (v, what, path, up, depth) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return
  if (typeof v === 'number') { if (!isFinite(v)) throw new SafeError(what + ' is not JSON-like: ' + v + ' at ' + path); return }
  if (typeof v !== 'object') throw new SafeError(what + ' is not JSON-like: ' + typeof v + ' at ' + path)
  for (let p = up; p !== null; p = p.up) if (p.v === v) throw new SafeError(what + ' is not JSON-like: cyclic reference at ' + path)
  if (depth > maxDepth) throw new SafeError(what + ' is nested too deeply: more than ' + maxDepth + ' levels at ' + path)
  const chain = { v, up }
  if (isArray(v)) {
    for (let i = 0; i < v.length; i++) check(v[i], what, path + '[' + i + ']', chain, depth + 1)
    return
  }
  const proto = getPrototypeOf(v)
  if (proto !== ObjectProto && proto !== null) throw new SafeError(what + ' is not JSON-like: class instance at ' + path)
  const ks = keys(v)
  for (let i = 0; i < ks.length; i++) {
    const d = getOwnPropertyDescriptor(v, ks[i])
    if (!hasOwn(d, 'value')) throw new SafeError(what + ' is not JSON-like: accessor property at ' + path + '.' + ks[i])
    check(d.value, what, path + '.' + ks[i], chain, depth + 1)
  }
}

function encode (v, what) {
  if (v === undefined) return 'null'
  check(v, what, '$', null, 1)
  const text = stringify(v)
  if (typeof text !== 'string') throw new SafeError(what + ' is not JSON-like')
  if (text.length > maxBytes) throw new SafeError(what + ' is too large: ' + text.length + ' characters of JSON, limit ' + maxBytes)
  return text
}

function errorText (err) {
  try {
    if (err !== null && typeof err === 'object') {
      const message = err.message
      if (typeof message === 'string') return clean(cut(message, 0, 2000)) || 'error'
    }
    return clean(cut(SafeString(err), 0, 2000))
  } catch { return 'error' }
}

// an error's reply text: its message, then a trailer with its status and stack
function errorRecord (err) {
  const message = errorText(err)
  let status, stack
  try {
    if (err !== null && typeof err === 'object') {
      status = apply(wmGet, statuses, [err])
      const raw = err.stack
      if (typeof raw === 'string') stack = cut(raw, 0, 8000)
    }
  } catch {}
  if (status === undefined && stack === undefined) return message
  return message + '\n' + stringify({ error: { status, stack } })
}

// a result's reply text: its JSON, or a stem.response's body with a trailer of status and headers
function resultRecord (v) {
  let r
  try { r = v !== null && typeof v === 'object' ? apply(wmGet, responses, [v]) : undefined } catch { r = undefined }
  if (r === undefined) return encode(v, 'result')
  return encode(r[2], 'response body') + '\n' + stringify({ response: { status: r[0], headers: r[1] } })
}

const REMINDERS = '${REMINDERS_FIELD}', MAX_REMINDERS = ${MAX_REMINDERS}, MIN_DELAY = ${MIN_REMINDER_DELAY_MS}, EPOCH_FROM = ${EPOCH_WHEN_FROM}, MAX_TIME = 8.64e15
// id → { due, method, args (JSON text), json (its entry in the state field) }; remindersJson: the table as the state field holds it
// ('' when empty, null when it changed since: built at the next snapshot, once per message)
let table = { __proto__: null }, reminderCount = 0, remindersJson = ''
const CURSORS = '${CURSORS_FIELD}', RECORD = '${RECORD_METHOD}', CURSOR = '${CURSOR_METHOD}'
// 'stream/partition' → [gen, offset] of the last record applied; partition counts by stream (asked once)
let cursors = { __proto__: null }, cursorsJson = ''
const partitionCounts = { __proto__: null }
${cursorAccepts.toString()}
${pickPartition.toString()}
${partitionCell.toString()}
let instance, Cls, askSeq = 0, lastState = '{}', pendingCount = 0, tells = 0, logs = 0
// the state the host holds as far as this isolate knows (null: unknown, the next result sends it whole)
let sentState = null
const MAX_LOGS = 100
let out = '', finished = ''
/** why the instance could not be rolled back: the host must rebuild the isolate */
let broken = ''
const pending = new SafeMap()
// keyed cells: idle ms (0: not keyed), the key of the running message, saved fields by key, activations by key
// shardText: the shard's last state text, null once a key's fields or the reminders changed
let keyedIdle = 0, currentKey = null, keyTexts = { __proto__: null }, lastSweep = 0, shardText = null
const actives = new SafeMap()

function trailer (result) {
  const text = result + '\x03' + out + '\x03' + finished
  out = ''
  finished = ''
  return text
}

function snapshot () {
  if (keyedIdle > 0) return shardSnapshot()
  return withReminders(fieldsText())
}

function fieldsText () {
  const state = { __proto__: null }
  const ks = keys(instance)
  for (let i = 0; i < ks.length; i++) {
    if (ks[i] === REMINDERS) throw new SafeError('field ' + REMINDERS + ' is reserved for the reminders of the cell')
    if (ks[i] === CURSORS) throw new SafeError('field ' + CURSORS + ' is reserved for the stream cursors of the cell')
    state[ks[i]] = instance[ks[i]]
  }
  return encode(state, 'state')
}

// the runtime's own fields after the cell's: its stream cursors, then its reminders
function withReminders (fields) {
  if (cursorsJson !== '') fields = (fields === '{}' ? '{' : cut(fields, 0, fields.length - 1) + ',') + stringify(CURSORS) + ':' + cursorsJson + '}'
  if (remindersJson === null) remindersJson = remindersText()
  if (remindersJson === '') return fields
  const text = (fields === '{}' ? '{' : cut(fields, 0, fields.length - 1) + ',') + stringify(REMINDERS) + ':' + remindersJson + '}'
  if (text.length > maxBytes) throw new SafeError('state is too large with its ' + reminderCount + ' reminders: ' + text.length + ' characters of JSON, limit ' + maxBytes)
  return text
}

function remindersChanged (delta) {
  reminderCount += delta
  remindersJson = null
}

// an entry of the table, with its text in the state field (made once, not per snapshot)
function reminder (id, due, method, args, key) {
  return { __proto__: null, due, method, args, key, json: '{"id":' + stringify(id) + ',"due":' + stringify(due) + ',"method":' + stringify(method) + ',"args":' + stringify(args) + (key === null ? '' : ',"key":' + stringify(key)) + '}' }
}

function remindersText () {
  let text = ''
  const ids = keys(table)
  for (let i = 0; i < ids.length; i++) {
    text += (i === 0 ? '' : ',') + table[ids[i]].json
  }
  return ids.length === 0 ? '' : '[' + text + ']'
}

// the table of a saved state; entries that are not well-formed are left out, with a log line
function loadReminders (raw) {
  table = { __proto__: null }
  let dropped = 0, n = 0
  if (isArray(raw)) {
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i]
      if (r === null || typeof r !== 'object' || typeof r.id !== 'string' || !matches(REMINDER_ID, r.id) || hasOwn(table, r.id) ||
        typeof r.due !== 'number' || !isInteger(r.due) || r.due < 0 || r.due > MAX_TIME || typeof r.method !== 'string' || r.method.length === 0 ||
        r.method.length > 200 || matches(CONTROL, r.method) || typeof r.args !== 'string' || matches(CONTROL, r.args) || n >= MAX_REMINDERS) { dropped++; continue }
      table[r.id] = reminder(r.id, r.due, r.method, r.args, typeof r.key === 'string' && r.key.length <= 256 ? r.key : null)
      n++
    }
  } else dropped = 1
  if (dropped > 0) hostLog('dropped ' + dropped + ' malformed reminder(s) from the saved state of ' + self)
  reminderCount = n
  remindersJson = null
}

// sets the fields of stateJson; exact: also deletes the fields it does not have (a rollback
// to the last good state; loading keeps the fields a new version of the class added)
function restore (stateJson, exact) {
  const state = parse(stateJson)
  const fields = exact ? keys(instance) : []
  for (let i = 0; i < fields.length; i++) {
    if (!hasOwn(state, fields[i]) && !deleteProperty(instance, fields[i])) throw new SafeError('field ' + fields[i] + ' cannot be deleted')
  }
  const ks = keys(state)
  for (let i = 0; i < ks.length; i++) {
    if (ks[i] !== REMINDERS && ks[i] !== CURSORS) defineProperty(instance, ks[i], { __proto__: null, value: state[ks[i]], writable: true, enumerable: true, configurable: true })
  }
  // a keyed cell's reminders are the shard's (loadShard), not in a key's fields (and it consumes no stream)
  if (keyedIdle > 0) return
  loadCursors(hasOwn(state, CURSORS) ? state[CURSORS] : null)
  if (hasOwn(state, REMINDERS)) loadReminders(state[REMINDERS])
  else if (reminderCount > 0) { table = { __proto__: null }; reminderCount = 0; remindersJson = '' }
}

// the cursors of a saved state; malformed entries are left out (their records apply again)
function loadCursors (raw) {
  cursors = { __proto__: null }
  if (raw !== null && typeof raw === 'object' && !isArray(raw)) {
    const ks = keys(raw)
    for (let i = 0; i < ks.length && i < 1024; i++) {
      const c = raw[ks[i]]
      if (isArray(c) && c.length === 2 && isInteger(c[0]) && isInteger(c[1]) && c[0] >= 0 && c[1] >= -1) cursors[ks[i]] = [c[0], c[1]]
    }
  }
  cursorsJson = keys(cursors).length === 0 ? '' : stringify(cursors)
}

// records of one partition, in offset order: those past the cursor run onRecord; one state for all
function deliver (argsJson) {
  let args
  try { args = parse(argsJson) } catch (err) { return finish(false, errorRecord(err)) }
  if (!isArray(args) || args.length !== 4 || typeof args[0] !== 'string' || !isInteger(args[1]) || !isInteger(args[2]) || !isArray(args[3])) return finish(false, RECORD + ': malformed delivery')
  const stream = args[0], partition = args[1], gen = args[2], records = args[3]
  if (!isMessage('onRecord')) return finish(false, self + ' has no onRecord(record, meta) method to consume stream ' + stream)
  const at = stream + '/' + partition
  const started = dateNow()
  let applied = 0
  try {
    for (let i = 0; i < records.length; i++) {
      const r = records[i]
      if (!isArray(r) || r.length !== 4 || !isInteger(r[0]) || r[0] < 0 || !isInteger(r[2])) throw new SafeError(RECORD + ': malformed record')
      if (!cursorAccepts(cursors[at], gen, r[0])) continue
      const v = apply(instance.onRecord, instance, [r[3], { stream, partition, offset: r[0], key: r[1], time: r[2] }])
      if (v !== null && typeof v === 'object' && getPrototypeOf(v) === PromiseProto) throw new SafeError('onRecord of ' + self + ' returned a promise: it must apply the record synchronously (its cursor moves with the state)')
      cursors[at] = [gen, r[0]]
      applied++
    }
  } catch (err) {
    loadCursors(parse(lastState)[CURSORS] ?? null)
    return finish(false, errorRecord(err))
  }
  if (applied > 0) cursorsJson = stringify(cursors)
  return finish(true, stringify({ applied, ms: dateNow() - started }))
}

// [gen, offset] of the last record of one partition applied here, or null: the pump asks
// it before it moves the partition to another instance
function cursorOf (argsJson) {
  let args
  try { args = parse(argsJson) } catch (err) { return finish(false, errorRecord(err)) }
  if (!isArray(args) || args.length !== 2 || typeof args[0] !== 'string' || !isInteger(args[1])) return finish(false, CURSOR + ': malformed request')
  const c = cursors[args[0] + '/' + args[1]]
  return finish(true, c === undefined ? 'null' : stringify(c))
}

function rollback () {
  try {
    if (keyedIdle === 0) { restore(lastState, true); return }
    // the key's activation is dropped: its next message activates it from its last good fields
    loadShard(lastState)
    if (currentKey !== null) apply(mapDelete, actives, [currentKey])
    instance = undefined
  } catch (err) { broken = 'its state cannot be rolled back: ' + errorText(err) }
}

// keyed: the shard's state text from the saved fields, the running key's taken from its instance first
function shardSnapshot () {
  if (currentKey !== null && instance !== undefined) {
    const fields = fieldsText()
    if (keyTexts[currentKey] !== fields) { keyTexts[currentKey] = fields; shardText = null }
  }
  // a message that changed nothing costs no rebuild of the shard's text (O(keys))
  if (shardText !== null && remindersJson !== null) return shardText
  const ks = keys(keyTexts)
  let body = ''
  for (let i = 0; i < ks.length; i++) body += (i === 0 ? '' : ',') + stringify(ks[i]) + ':' + keyTexts[ks[i]]
  const text = withReminders('{"keys":{' + body + '}}')
  if (text.length > maxBytes) throw new SafeError('state of shard ' + self + ' is too large with its ' + ks.length + ' keys: ' + text.length + ' characters of JSON, limit ' + maxBytes + ' (give the cell more shards)')
  shardText = text
  return text
}

// keyed: the saved fields of every key and the reminders from a shard's state text (null: blank)
function loadShard (stateJson) {
  keyTexts = { __proto__: null }
  shardText = null
  const state = stateJson === null ? { __proto__: null } : parse(stateJson)
  const saved = hasOwn(state, 'keys') ? state.keys : undefined
  if (saved !== null && typeof saved === 'object' && !isArray(saved)) {
    const ks = keys(saved)
    for (let i = 0; i < ks.length; i++) {
      const v = saved[ks[i]]
      if (v !== null && typeof v === 'object' && !isArray(v)) keyTexts[ks[i]] = stringify(v)
    }
  } else if (stateJson !== null && keys(state).length > 0) hostLog('the saved state of ' + self + ' holds no keys: the keyed cell starts blank')
  if (hasOwn(state, REMINDERS)) loadReminders(state[REMINDERS])
  else { table = { __proto__: null }; reminderCount = 0; remindersJson = '' }
}

// keyed: the instance of \`key\` (activated from its saved fields, or blank, on its first message since it was passivated)
function activate (key) {
  currentKey = key
  const active = apply(mapGet, actives, [key])
  if (active !== undefined) { active.used = dateNow(); instance = active.obj; return }
  instance = undefined
  const obj = new Cls()
  instance = obj
  if (hasOwn(keyTexts, key)) restore(keyTexts[key], false)
  apply(mapSet, actives, [key, { __proto__: null, obj, used: dateNow() }])
}

// keyed: passivate the activations idle for keyedIdle ms (looked at most every second, or every idle/4)
function sweep () {
  const now = dateNow()
  if (now - lastSweep < keyedIdle / 4 && now - lastSweep < 1000) return
  lastSweep = now
  apply(mapForEach, actives, [(a, k) => { if (now - a.used >= keyedIdle) apply(mapDelete, actives, [k]) }])
}

function isMessage (name) {
  if (typeof name !== 'string' || name === 'constructor' || name[0] === '_' || name[0] === '#') return false
  // while the constructor runs (stem.schedule in it), the instance is not assigned yet
  for (let p = instance === undefined ? Cls.prototype : getPrototypeOf(instance); p !== null && p !== ObjectProto; p = getPrototypeOf(p)) {
    const d = getOwnPropertyDescriptor(p, name)
    if (d !== undefined) return hasOwn(d, 'value') && typeof d.value === 'function'
  }
  return false
}

function finish (ok, value) {
  let state
  try {
    state = snapshot()
  } catch (err) {
    // the message left a state that cannot be stored: refuse it and roll back
    rollback()
    sentState = null
    return 'e' + 'state after this message is invalid: ' + errorText(err) + '\0' + lastState
  }
  if (!ok) {
    // no half-applied change: a failed message leaves the last good state
    if (state !== lastState) rollback()
    // a reminder's firing hands the host this state even on an error (boundary.ts stateOnError)
    sentState = null
    return 'e' + value + '\0' + lastState
  }
  // a state the host holds is not copied out of the isolate again (a keyed shard's is O(keys)): '' says so
  const changed = state !== sentState
  lastState = state
  sentState = state
  return 'o' + value + '\0' + (changed ? state : '')
}

function settle (id, ok, v) {
  let text
  if (ok) { try { text = finish(true, resultRecord(v)) } catch (err) { text = finish(false, errorRecord(err)) } } else text = finish(false, errorRecord(v))
  finished += (finished === '' ? '' : '\x02') + id + '\x01' + text
}

function call (id, method, argsJson) {
  if (keyedIdle > 0) { currentKey = null; instance = undefined; sweep() }
  if (method[0] === '\x04') return fire(id, cut(method, 1, method.length))
  if (method[0] === '\x05') return dropReminder(cut(method, 1, method.length))
  if (method[0] === '\x06') {
    const end = find(method, '\x06', 1)
    if (keyedIdle === 0) return finish(false, self + ' is not a keyed cell: address it as app/cell or app/cell#i')
    try { activate(cut(method, 1, end)) } catch (err) { return finish(false, errorRecord(err)) }
    method = cut(method, end + 1, method.length)
  } else if (keyedIdle > 0) return finish(false, self + ' is a keyed cell: address one of its keys, app/cell/<key>')
  if (method === RECORD) return deliver(argsJson)
  if (method === CURSOR) return cursorOf(argsJson)
  let args
  try { args = parse(argsJson) } catch (err) { return finish(false, errorRecord(err)) }
  return invoke(id, method, args)
}

// a due reminder: taken out of the table first, so that its firing is consumed whatever its
// method does (a throw rolls back to the state without it), then its method runs
function fire (id, reminderId) {
  if (!hasOwn(table, reminderId)) return finish(true, 'null')
  const r = table[reminderId]
  deleteProperty(table, reminderId)
  remindersChanged(-1)
  let args
  try {
    lastState = snapshot()
    args = parse(r.args)
  } catch (err) {
    return finish(false, errorRecord(err))
  }
  if (!isArray(args)) return finish(false, 'arguments of reminder ' + reminderId + ' are not a JSON array')
  if (keyedIdle > 0) {
    // a reminder of a keyed cell wakes its key (one without a key is consumed unrun)
    if (r.key === null) return finish(true, 'null')
    try { activate(r.key) } catch (err) { return finish(false, errorRecord(err)) }
  }
  defineProperty(args, args.length, { __proto__: null, value: { reminder: reminderId, due: r.due }, writable: true, enumerable: true, configurable: true })
  return invoke(id, r.method, args)
}

// a reminder whose firings kept failing: out of the table, unrun
function dropReminder (reminderId) {
  if (hasOwn(table, reminderId)) {
    deleteProperty(table, reminderId)
    remindersChanged(-1)
  }
  return finish(true, 'null')
}

function invoke (id, method, args) {
  if (!isMessage(method)) return finish(false, 'unknown method ' + stringify(cut(SafeString(method), 0, 100)) + ' on ' + self)
  let r
  try {
    if (!isArray(args)) return finish(false, 'arguments must be a JSON array')
    r = apply(instance[method], instance, args)
    if (r !== null && typeof r === 'object' && getPrototypeOf(r) === PromiseProto) {
      apply(then, r, [v => { settle(id, true, v) }, e => { settle(id, false, e) }])
      return 'p'
    }
  } catch (err) {
    return finish(false, errorRecord(err))
  }
  try { return finish(true, resultRecord(r)) } catch (err) { return finish(false, errorRecord(err)) }
}

function outgoing (address, method, args, tell) {
  const what = 'stem.' + (tell ? 'tell' : 'ask')
  if (typeof address !== 'string' || typeof method !== 'string' || address.length > 200 || method.length > 200 || matches(CONTROL, address) || matches(CONTROL, method)) {
    throw new SafeError(what + '(address, method, ...args): address and method must be short strings')
  }
  if (tell) {
    if (++tells > maxPending) throw new SafeError('too many tells from ' + self + ' in one message (limit ' + maxPending + ')')
  } else if (pendingCount >= maxPending) {
    throw new SafeError('too many pending asks from ' + self + ' (limit ' + maxPending + ')')
  }
  const argsJson = encode(args, 'arguments')
  if (out.length + argsJson.length > maxOut) throw new SafeError('too much outgoing data from ' + self + ' at once')
  const id = ++askSeq
  out += (out === '' ? '' : '\x02') + id + '\x01' + address + '\x01' + method + '\x01' + argsJson + (tell ? '\x01t' : '\x01a')
  return id
}

// stem.self is set by 'bind', before the cell's module runs (a blank stem cell waits unbound)
function bind (address) {
  if (self !== '') throw new SafeError('stem cell is already bound to ' + self)
  self = address
  defineProperty(globalThis, 'stem', { __proto__: null, value: freeze({ __proto__: null, self, get key () { return currentKey }, ask, tell, log, now, error, response, schedule, cancel, reminders, emit }), writable: false, enumerable: false, configurable: false })
  return trailer('')
}

function ask (address, method, ...args) {
  let id
  try { id = outgoing(address, method, args, false) } catch (err) { return apply(promiseReject, SafePromise, [err]) }
  pendingCount++
  return new SafePromise((resolve, reject) => { apply(mapSet, pending, [id, { resolve, reject }]) })
}
function tell (address, method, ...args) { outgoing(address, method, args, true) }
// stem.emit(stream, record, { key }): appends to a partition of the app's stream; resolves
// with { partition, offset } once the record is durable
function emit (stream, record, options) {
  if (typeof stream !== 'string' || !matches(STREAM_NAME, stream)) return apply(promiseReject, SafePromise, [new SafeError('stem.emit(stream, record, { key }): stream must be the name of a stream of the app')])
  const key = options === undefined || options === null ? null : options.key
  if (key !== null && key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) return apply(promiseReject, SafePromise, [new SafeError('stem.emit: key must be a string of 1-256 characters')])
  const app = cut(self, 0, find(self, '/', 0))
  const append = n => ask(app + '/' + partitionCell(stream, pickPartition(key ?? null, n)), 'append', record, key ?? null)
  if (partitionCounts[stream] !== undefined) return append(partitionCounts[stream])
  return apply(then, ask(app + '/' + partitionCell(stream, 0), 'partitions'), [n => {
    if (!isInteger(n) || n < 1 || n > 1024) throw new SafeError('stream ' + stream + ' answered a bad partition count')
    partitionCounts[stream] = n
    return append(n)
  }])
}
function log (...args) {
  if (++logs > MAX_LOGS) return
  let text = ''
  for (let i = 0; i < args.length; i++) {
    let part
    try { part = typeof args[i] === 'string' ? args[i] : stringify(args[i]) } catch { part = '[unprintable]' }
    text += (i > 0 ? ' ' : '') + SafeString(part)
    if (text.length > 8192) break
  }
  text = cut(text, 0, 8192)
  hostLog(logs === MAX_LOGS ? text + ' (further logs of this message dropped)' : text)
}
function now () { return dateNow() }

function schedule (when, method, ...args) {
  if (typeof when !== 'number' || !isFinite(when)) throw new SafeError('stem.schedule(when, method, ...args): when must be a number: a delay in ms (below ' + EPOCH_FROM + ') or a time in ms since the epoch')
  const at = dateNow()
  const due = ceil(when < EPOCH_FROM ? at + when : when)
  if (due - at < MIN_DELAY) throw new SafeError('stem.schedule: a reminder must be due at least ' + MIN_DELAY + ' ms ahead, got ' + (when < EPOCH_FROM ? 'a delay of ' + when + ' ms' : 'a time ' + (at - due) + ' ms in the past'))
  if (due > MAX_TIME) throw new SafeError('stem.schedule: ' + when + ' is past the last time a Date can hold')
  if (!isMessage(method)) throw new SafeError('stem.schedule: ' + stringify(cut(SafeString(method), 0, 100)) + ' is not a method of ' + self)
  if (reminderCount >= MAX_REMINDERS) throw new SafeError('too many pending reminders on ' + self + ' (limit ' + MAX_REMINDERS + '): cancel some or let them fire first')
  const argsJson = encode(args, 'reminder arguments')
  let id
  do id = 'r' + apply(numToString, at, [36]) + apply(numToString, floor(apply(random, undefined, []) * 2176782336), [36])
  while (hasOwn(table, id))
  table[id] = reminder(id, due, method, argsJson, currentKey)
  remindersChanged(1)
  return id
}
function cancel (id) {
  if (typeof id !== 'string' || !hasOwn(table, id) || table[id].key !== currentKey) return false
  deleteProperty(table, id)
  remindersChanged(-1)
  return true
}
// the pending reminders, by due time: fresh copies ({ id, due, method, args })
function reminders () {
  const ids = keys(table), list = []
  for (let i = 0; i < ids.length; i++) {
    const r = table[ids[i]]
    if (r.key !== currentKey) continue
    const item = { id: ids[i], due: r.due, method: r.method, args: parse(r.args) }
    let j = list.length
    while (j > 0 && (list[j - 1].due > item.due || (list[j - 1].due === item.due && list[j - 1].id > item.id))) { list[j] = list[j - 1]; j-- }
    list[j] = item
  }
  return list
}
function error (status, message) {
  if (typeof status !== 'number' || !isInteger(status) || status < 400 || status > 599) throw new SafeError('stem.error(status, message): status must be a whole number 400–599, got ' + clean(cut(SafeString(status), 0, 40)))
  if (typeof message !== 'string') throw new SafeError('stem.error(status, message): message must be a string')
  const err = new SafeError(message)
  apply(wmSet, statuses, [err, status])
  return err
}
function response (status, body, headers) {
  if (typeof status !== 'number' || !isInteger(status) || status < 200 || status > 599) throw new SafeError('stem.response(status, body, headers): status must be a whole number 200–599, got ' + clean(cut(SafeString(status), 0, 40)))
  const copy = { __proto__: null }
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || isArray(headers)) throw new SafeError('stem.response(status, body, headers): headers must be an object of name: string value')
    const ks = keys(headers)
    if (ks.length > 50) throw new SafeError('stem.response: at most 50 headers')
    for (let i = 0; i < ks.length; i++) {
      const value = headers[ks[i]]
      if (!matches(HEADER_NAME, ks[i])) throw new SafeError('stem.response: ' + stringify(clean(cut(ks[i], 0, 40))) + ' is not a valid HTTP header name')
      if (typeof value !== 'string' || value.length > 4096 || matches(CONTROL, value)) throw new SafeError('stem.response: header ' + ks[i] + ' must be a string of at most 4096 characters without control characters')
      copy[ks[i]] = value
    }
  }
  check(body === undefined ? null : body, 'response body', '$', null, 1)
  const r = freeze({ __proto__: null })
  apply(wmSet, responses, [r, [status, copy, body === undefined ? null : body]])
  return r
}

// one record of packed answers: 'askId\x01o|e\x01text'
function settleAsk (record) {
  const a = find(record, '\x01', 0)
  const id = +cut(record, 0, a)
  const p = apply(mapGet, pending, [id])
  if (p === undefined) return
  apply(mapDelete, pending, [id])
  pendingCount--
  const text = cut(record, a + 3, record.length)
  if (cut(record, a + 1, a + 2) === 'o') {
    let value
    try { value = parse(text) } catch { p.reject(new SafeError('malformed result')); return }
    p.resolve(value)
    return
  }
  // an error: its message, then its status as a 4th field, if it carried one
  const s = find(text, '\x01', 0)
  const err = new SafeError(s === -1 ? text : cut(text, 0, s))
  if (s !== -1 && s + 1 < text.length) {
    const status = +cut(text, s + 1, text.length)
    defineProperty(err, 'code', { __proto__: null, value: status, writable: true, enumerable: false, configurable: true })
    // a rethrown error keeps its status: an HTTP route answers with it
    apply(wmSet, statuses, [err, status])
  }
  p.reject(err)
}

function entry (op, a, b) {
  if (op === 'calls') {
    const start = dateNow()
    let results = ''
    for (let from = 0; from < a.length;) {
      let end = find(a, '\x02', from)
      if (end === -1) end = a.length
      const f1 = find(a, '\x01', from), f2 = find(a, '\x01', f1 + 1)
      const id = cut(a, from, f1)
      tells = 0
      logs = 0
      const r = call(+id, cut(a, f1 + 1, f2), cut(a, f2 + 1, end))
      results += (from === 0 ? '' : '\x02') + id + '\x01' + r
      from = end + 1
      if (r === 'p' || dateNow() - start >= b) break
    }
    return trailer(results)
  }
  if (op === 'flush') return trailer('')
  if (op === 'bind') return bind(a)
  if (op === 'resolve') {
    for (let from = 0; from < a.length;) {
      let end = find(a, '\x02', from)
      if (end === -1) end = a.length
      settleAsk(cut(a, from, end))
      from = end + 1
    }
    return trailer('')
  }
  if (op === 'install') {
    Cls = a.default
    if (typeof Cls !== 'function' || !matches(CLASS, apply(fnToString, Cls, []))) throw new SafeError('the module of ' + self + ' must export a class as default')
    tells = 0
    logs = 0
    const marker = a['${KEYED_EXPORT}']
    if (marker !== undefined) {
      const idle = marker !== null && typeof marker === 'object' ? marker.idle : undefined
      if (typeof idle !== 'number' || !isInteger(idle) || idle < 1) throw new SafeError('${KEYED_EXPORT} of ' + self + ' must be { idle: ms }')
      keyedIdle = idle
      currentKey = null
      instance = undefined
      loadShard(b)
    } else {
      instance = new Cls()
      if (b !== null) restore(b, false)
    }
    lastState = snapshot()
    sentState = lastState
    return trailer(lastState)
  }
  throw new SafeError('unknown operation')
}

return function control (op, a, b) {
  const text = entry(op, a, b)
  if (broken !== '') throw new SafeError(broken)
  return text
}
`
