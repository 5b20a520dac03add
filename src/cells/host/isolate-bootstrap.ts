// The JavaScript that runs first in every cell isolate, before the cell's module.
// It receives the host callbacks as closure arguments ($0…$3), so cell code can never
// reach them: the only thing it leaves on globalThis is the frozen `stem` object.
// Everything crosses the isolate boundary as primitive strings/numbers: no host object,
// Reference or promise is ever handed to cell code (isolated-vm's known pitfalls).
// It captures the intrinsics it needs before cell code runs, so a cell that tampers
// with its own globals only breaks itself; the host trusts nothing it returns anyway.
//
// control(op, …) is returned to the host (as a Reference):
//   'install' (namespace, stateJson|null) → stateJson         build the instance
//   'call'    (id, method, argsJson)      → 'o'/'e' + text + '\0' + stateJson, or 'p' (pending;
//                                            the result arrives later through done(id, text))
//   'resolve' (askId, ok, text)           → settles a pending stem.ask
// JSON.stringify escapes U+0000, so '\0' cannot occur inside the JSON texts.
export const BOOTSTRAP_SOURCE = String.raw`
const hostAsk = $0, hostLog = $1, hostDone = $2, self = $3, maxBytes = $4
const { keys, getPrototypeOf, getOwnPropertyDescriptor, defineProperty, freeze, create } = Object
const ObjectProto = Object.prototype, isArray = Array.isArray, stringify = JSON.stringify, parse = JSON.parse
const isFinite = Number.isFinite, apply = Reflect.apply, then = Promise.prototype.then
const SafeError = Error, SafeMap = Map, mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete
const SafePromise = Promise, SafeString = String, fnToString = Function.prototype.toString

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
    if (err !== null && typeof err === 'object' && typeof err.message === 'string') return err.message.slice(0, 2000) || 'error'
    return SafeString(err).slice(0, 2000)
  } catch { return 'error' }
}

let instance, Cls, askSeq = 0, lastState = '{}'
const pending = new SafeMap()

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
  if (ok) { try { text = finish(true, encode(v, 'result')) } catch (err) { text = finish(false, errorText(err)) } } else text = finish(false, errorText(v))
  hostDone(id, text)
}

function call (id, method, argsJson) {
  if (!isMessage(method)) return finish(false, 'unknown method ' + stringify(SafeString(method).slice(0, 100)) + ' on ' + self)
  let r
  try {
    r = apply(instance[method], instance, parse(argsJson))
  } catch (err) {
    return finish(false, errorText(err))
  }
  if (r !== null && (typeof r === 'object' || typeof r === 'function') && r instanceof SafePromise) {
    apply(then, r, [v => { settle(id, true, v) }, e => { settle(id, false, e) }])
    return 'p'
  }
  try { return finish(true, encode(r, 'result')) } catch (err) { return finish(false, errorText(err)) }
}

function outgoing (address, method, args, tell) {
  if (typeof address !== 'string' || typeof method !== 'string') throw new SafeError('stem.' + (tell ? 'tell' : 'ask') + '(address, method, ...args): address and method must be strings')
  const argsJson = encode(args, 'arguments')
  const id = ++askSeq
  const refused = hostAsk(id, address, method, argsJson, tell)
  if (refused !== undefined) throw new SafeError(refused)
  return id
}

const stem = freeze({
  self,
  ask (address, method, ...args) {
    let id
    try { id = outgoing(address, method, args, false) } catch (err) { return SafePromise.reject(err) }
    return new SafePromise((resolve, reject) => { apply(mapSet, pending, [id, { resolve, reject }]) })
  },
  tell (address, method, ...args) { outgoing(address, method, args, true) },
  log (...args) {
    let text = ''
    for (let i = 0; i < args.length; i++) {
      let part
      try { part = typeof args[i] === 'string' ? args[i] : stringify(args[i]) } catch { part = '[unprintable]' }
      text += (i > 0 ? ' ' : '') + SafeString(part)
      if (text.length > 8192) break
    }
    hostLog(text.slice(0, 8192))
  },
  now () { return Date.now() }
})
defineProperty(globalThis, 'stem', { value: stem, writable: false, enumerable: false, configurable: false })

return function control (op, a, b, c) {
  if (op === 'call') return call(a, b, c)
  if (op === 'resolve') {
    const p = apply(mapGet, pending, [a])
    if (p === undefined) return
    apply(mapDelete, pending, [a])
    if (b) p.resolve(parse(c)); else p.reject(new SafeError(c))
    return
  }
  if (op === 'install') {
    Cls = a.default
    if (typeof Cls !== 'function' || !/^class\b/.test(apply(fnToString, Cls, []))) throw new SafeError('the module of ' + self + ' must export a class as default')
    instance = new Cls()
    if (b !== null) restore(b)
    lastState = snapshot()
    return lastState
  }
}
`
