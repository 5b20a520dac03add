// The JavaScript that runs first in every cell isolate, before the cell's module.
// It receives the host callbacks as closure arguments ($0…$3), so cell code can never
// reach them: the only thing it leaves on globalThis is the frozen `stem` object.
// Everything crosses the isolate boundary as primitive strings/numbers: no host object,
// Reference or promise is ever handed to cell code (isolated-vm's known pitfalls).
// It captures the intrinsics it needs before cell code runs, so a cell that tampers
// with its own globals only breaks itself; the host trusts nothing it returns anyway.
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
export const BOOTSTRAP_SOURCE = String.raw`
const hostLog = $0, maxBytes = $1, maxPending = $2
let self = ''
const { keys, getPrototypeOf, getOwnPropertyDescriptor, defineProperty, freeze, create } = Object
const ObjectProto = Object.prototype, isArray = Array.isArray, stringify = JSON.stringify, parse = JSON.parse
const isFinite = Number.isFinite, apply = Reflect.apply, then = Promise.prototype.then
const SafeError = Error, SafeMap = Map, mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete
const SafePromise = Promise, SafeString = String, fnToString = Function.prototype.toString
const SafeWeakMap = WeakMap, wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set, wmHas = WeakMap.prototype.has
const isInteger = Number.isInteger, regexTest = RegExp.prototype.test, HEADER_NAME = /^[!#$%&'*+.^_\x60|~0-9A-Za-z-]{1,100}$/
// errors made by stem.error (or answers to asks that carried a status) → status; stem.response objects → [status, headers, body]
const statuses = new SafeWeakMap(), responses = new SafeWeakMap()
const split = String.prototype.split, replace = String.prototype.replace, CONTROL = /[\x00-\x1f]/g
const maxOut = 4 * maxBytes, dateNow = Date.now
const clean = text => apply(replace, text, [CONTROL, ' '])

delete globalThis.SharedArrayBuffer
delete globalThis.Atomics
delete globalThis.WebAssembly

function check (v, what, path, seen) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return
  if (typeof v === 'number') { if (!isFinite(v)) throw new SafeError(what + ' is not JSON-like: ' + v + ' at ' + path); return }
  if (typeof v !== 'object') throw new SafeError(what + ' is not JSON-like: ' + typeof v + ' at ' + path)
  if (seen.indexOf(v) !== -1) throw new SafeError(what + ' is not JSON-like: cyclic reference at ' + path)
  if (seen.length > 1000) throw new SafeError(what + ' is nested too deeply at ' + path)
  seen.push(v)
  if (isArray(v)) {
    for (let i = 0; i < v.length; i++) check(v[i], what, path + '[' + i + ']', seen)
  } else {
    const proto = getPrototypeOf(v)
    if (proto !== ObjectProto && proto !== null) throw new SafeError(what + ' is not JSON-like: class instance at ' + path)
    const ks = keys(v)
    for (let i = 0; i < ks.length; i++) {
      const d = getOwnPropertyDescriptor(v, ks[i])
      if (d.get !== undefined || d.set !== undefined) throw new SafeError(what + ' is not JSON-like: accessor property at ' + path + '.' + ks[i])
      check(d.value, what, path + '.' + ks[i], seen)
    }
  }
  seen.pop()
}

function encode (v, what) {
  if (v === undefined) return 'null'
  check(v, what, '$', [])
  const text = stringify(v)
  if (text.length > maxBytes) throw new SafeError(what + ' is too large: ' + text.length + ' characters of JSON, limit ' + maxBytes)
  return text
}

function errorText (err) {
  try {
    if (err !== null && typeof err === 'object' && typeof err.message === 'string') return clean(err.message.slice(0, 2000)) || 'error'
    return clean(SafeString(err).slice(0, 2000))
  } catch { return 'error' }
}

// an error's reply text: its message, then a trailer with its status and stack
function errorRecord (err) {
  const message = errorText(err)
  let status, stack
  try {
    if (err !== null && typeof err === 'object') {
      status = apply(wmGet, statuses, [err])
      if (typeof err.stack === 'string') stack = err.stack.slice(0, 8000)
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

let instance, Cls, askSeq = 0, lastState = '{}', pendingCount = 0, tells = 0, logs = 0
const MAX_LOGS = 100
let out = '', finished = ''
const pending = new SafeMap()

function trailer (result) {
  const text = result + '\x03' + out + '\x03' + finished
  out = ''
  finished = ''
  return text
}

function snapshot () {
  const state = create(null)
  const ks = keys(instance)
  for (let i = 0; i < ks.length; i++) state[ks[i]] = instance[ks[i]]
  return encode(state, 'state')
}

function restore (stateJson) {
  const state = parse(stateJson)
  const ks = keys(state)
  for (let i = 0; i < ks.length; i++) defineProperty(instance, ks[i], { value: state[ks[i]], writable: true, enumerable: true, configurable: true })
}

function isMessage (name) {
  if (typeof name !== 'string' || name === 'constructor' || name[0] === '_' || name[0] === '#') return false
  for (let p = getPrototypeOf(instance); p !== null && p !== ObjectProto; p = getPrototypeOf(p)) {
    const d = getOwnPropertyDescriptor(p, name)
    if (d !== undefined) return typeof d.value === 'function'
  }
  return false
}

function finish (ok, value) {
  let state
  try {
    state = snapshot()
  } catch (err) {
    // the message left a state that cannot be stored: refuse it and roll back
    try { restore(lastState) } catch {}
    return 'e' + 'state after this message is invalid: ' + errorText(err) + '\0' + lastState
  }
  if (!ok) {
    // no half-applied change: a failed message leaves the last good state
    if (state !== lastState) { try { restore(lastState) } catch {} }
    return 'e' + value + '\0' + lastState
  }
  lastState = state
  return 'o' + value + '\0' + state
}

function settle (id, ok, v) {
  let text
  if (ok) { try { text = finish(true, resultRecord(v)) } catch (err) { text = finish(false, errorRecord(err)) } } else text = finish(false, errorRecord(v))
  finished += (finished === '' ? '' : '\x02') + id + '\x01' + text
}

function call (id, method, argsJson) {
  if (!isMessage(method)) return finish(false, 'unknown method ' + stringify(SafeString(method).slice(0, 100)) + ' on ' + self)
  let r
  try {
    const args = parse(argsJson)
    if (!isArray(args)) return finish(false, 'arguments must be a JSON array')
    r = apply(instance[method], instance, args)
  } catch (err) {
    return finish(false, errorRecord(err))
  }
  if (r !== null && (typeof r === 'object' || typeof r === 'function') && r instanceof SafePromise) {
    apply(then, r, [v => { settle(id, true, v) }, e => { settle(id, false, e) }])
    return 'p'
  }
  try { return finish(true, resultRecord(r)) } catch (err) { return finish(false, errorRecord(err)) }
}

function outgoing (address, method, args, tell) {
  const what = 'stem.' + (tell ? 'tell' : 'ask')
  if (typeof address !== 'string' || typeof method !== 'string' || address.length > 200 || method.length > 200 || clean(address + method) !== address + method) {
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
  defineProperty(globalThis, 'stem', { value: freeze({ self, ask, tell, log, now, error, response }), writable: false, enumerable: false, configurable: false })
  return trailer('')
}

const { ask, tell, log, now, error, response } = {
  ask (address, method, ...args) {
    let id
    try { id = outgoing(address, method, args, false) } catch (err) { return SafePromise.reject(err) }
    pendingCount++
    return new SafePromise((resolve, reject) => { apply(mapSet, pending, [id, { resolve, reject }]) })
  },
  tell (address, method, ...args) { outgoing(address, method, args, true) },
  log (...args) {
    if (++logs > MAX_LOGS) return
    let text = ''
    for (let i = 0; i < args.length; i++) {
      let part
      try { part = typeof args[i] === 'string' ? args[i] : stringify(args[i]) } catch { part = '[unprintable]' }
      text += (i > 0 ? ' ' : '') + SafeString(part)
      if (text.length > 8192) break
    }
    hostLog(logs === MAX_LOGS ? text.slice(0, 8192) + ' (further logs of this message dropped)' : text.slice(0, 8192))
  },
  now () { return dateNow() },
  error (status, message) {
    if (typeof status !== 'number' || !isInteger(status) || status < 400 || status > 599) throw new SafeError('stem.error(status, message): status must be a whole number 400–599, got ' + clean(SafeString(status).slice(0, 40)))
    if (typeof message !== 'string') throw new SafeError('stem.error(status, message): message must be a string')
    const err = new SafeError(message)
    apply(wmSet, statuses, [err, status])
    return err
  },
  response (status, body, headers) {
    if (typeof status !== 'number' || !isInteger(status) || status < 200 || status > 599) throw new SafeError('stem.response(status, body, headers): status must be a whole number 200–599, got ' + clean(SafeString(status).slice(0, 40)))
    const copy = create(null)
    if (headers !== undefined) {
      if (headers === null || typeof headers !== 'object' || isArray(headers)) throw new SafeError('stem.response(status, body, headers): headers must be an object of name: string value')
      const ks = keys(headers)
      if (ks.length > 50) throw new SafeError('stem.response: at most 50 headers')
      for (let i = 0; i < ks.length; i++) {
        const value = headers[ks[i]]
        if (!apply(regexTest, HEADER_NAME, [ks[i]])) throw new SafeError('stem.response: ' + stringify(clean(ks[i].slice(0, 40))) + ' is not a valid HTTP header name')
        if (typeof value !== 'string' || value.length > 4096 || clean(value) !== value) throw new SafeError('stem.response: header ' + ks[i] + ' must be a string of at most 4096 characters without control characters')
        copy[ks[i]] = value
      }
    }
    check(body === undefined ? null : body, 'response body', '$', [])
    const r = freeze(create(null))
    apply(wmSet, responses, [r, [status, copy, body === undefined ? null : body]])
    return r
  }
}

function settleAsk (record) {
  const f = apply(split, record, ['\x01'])
  const id = +f[0]
  const p = apply(mapGet, pending, [id])
  if (p === undefined) return
  apply(mapDelete, pending, [id])
  pendingCount--
  if (f[1] === 'o') { p.resolve(parse(f[2])); return }
  const err = new SafeError(f[2])
  if (f[3] !== undefined && f[3] !== '') {
    const status = +f[3]
    defineProperty(err, 'code', { value: status, writable: true, enumerable: false, configurable: true })
    // a rethrown error keeps its status: an HTTP route answers with it
    apply(wmSet, statuses, [err, status])
  }
  p.reject(err)
}

return function control (op, a, b, c) {
  if (op === 'calls') {
    const records = apply(split, a, ['\x02'])
    const start = dateNow()
    let results = ''
    for (let i = 0; i < records.length; i++) {
      const f = apply(split, records[i], ['\x01'])
      tells = 0
      logs = 0
      const r = call(+f[0], f[1], f[2])
      results += (i === 0 ? '' : '\x02') + f[0] + '\x01' + r
      if (r === 'p' || dateNow() - start >= b) break
    }
    return trailer(results)
  }
  if (op === 'flush') return trailer('')
  if (op === 'bind') return bind(a)
  if (op === 'resolve') {
    const records = apply(split, a, ['\x02'])
    for (let i = 0; i < records.length; i++) settleAsk(records[i])
    return trailer('')
  }
  if (op === 'install') {
    Cls = a.default
    if (typeof Cls !== 'function' || !/^class\b/.test(apply(fnToString, Cls, []))) throw new SafeError('the module of ' + self + ' must export a class as default')
    tells = 0
    logs = 0
    instance = new Cls()
    if (b !== null) restore(b)
    lastState = snapshot()
    return trailer(lastState)
  }
}
`
