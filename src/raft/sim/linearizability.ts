// A linearizability checker after Wing & Gong, with Lowe's memoization and Porcupine's
// P-compositionality: the history is split per key and each part is searched
// depth-first for a sequential order that respects real time and the model; a
// (set of linearized operations, state) pair already explored is never explored again.

export interface Operation<I, O> {
  input: I
  output: O
  /** time of the call; distinct from every other event time */
  call: number
  /** time of the response, Infinity when it never came (the operation may or may not have happened) */
  return: number
}

export interface Model<S, I, O> {
  init: () => S
  /** is `output` a correct result of applying `input` to `state`, and what state follows */
  step: (state: S, input: I, output: O) => { ok: boolean, state: S }
  /** a string identifying a state (for the memo) */
  hash: (state: S) => string
  /** independent parts of a history (e.g. one per key); default: the whole history */
  partition?: (ops: Array<Operation<I, O>>) => Array<Array<Operation<I, O>>>
}

export type CheckResult = 'ok' | 'illegal' | 'unknown'

interface Node {
  op: number
  isCall: boolean
  /** the matching return node (for a call) */
  match: Node | null
  prev: Node | null
  next: Node | null
}

/** Checks one independent part; `budget` bounds the search steps ('unknown' when spent). */
function checkPart<S, I, O> (model: Model<S, I, O>, ops: Array<Operation<I, O>>, budget: number): CheckResult {
  const events: Array<{ t: number, op: number, isCall: boolean }> = []
  ops.forEach((o, i) => {
    events.push({ t: o.call, op: i, isCall: true })
    events.push({ t: o.return, op: i, isCall: false })
  })
  // at equal times (only possible for Infinity) calls come first
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1))
  const head: Node = { op: -1, isCall: false, match: null, prev: null, next: null }
  let tail = head
  const callNodes: Node[] = new Array(ops.length)
  const returnNodes: Node[] = new Array(ops.length)
  for (const e of events) {
    const n: Node = { op: e.op, isCall: e.isCall, match: null, prev: tail, next: null }
    tail.next = n
    tail = n
    if (e.isCall) callNodes[e.op] = n
    else returnNodes[e.op] = n
  }
  for (let i = 0; i < ops.length; i++) callNodes[i].match = returnNodes[i]

  const lift = (call: Node): void => {
    call.prev!.next = call.next
    if (call.next !== null) call.next.prev = call.prev
    const ret = call.match!
    ret.prev!.next = ret.next
    if (ret.next !== null) ret.next.prev = ret.prev
  }
  const unlift = (call: Node): void => {
    const ret = call.match!
    ret.prev!.next = ret
    if (ret.next !== null) ret.next.prev = ret
    call.prev!.next = call
    if (call.next !== null) call.next.prev = call
  }

  const linearized = new Uint32Array(Math.ceil(ops.length / 32))
  const memo = new Set<string>()
  const stack: Array<{ node: Node, state: S }> = []
  let state = model.init()
  let entry = head.next
  let steps = 0
  while (head.next !== null) {
    if (++steps > budget) return 'unknown'
    if (entry === null) return 'illegal'
    if (entry.isCall) {
      const o = ops[entry.op]
      const r = model.step(state, o.input, o.output)
      if (r.ok) {
        linearized[entry.op >> 5] |= 1 << (entry.op & 31)
        const key = linearized.join(',') + '|' + model.hash(r.state)
        if (!memo.has(key)) {
          memo.add(key)
          stack.push({ node: entry, state })
          state = r.state
          lift(entry)
          entry = head.next
          continue
        }
        linearized[entry.op >> 5] &= ~(1 << (entry.op & 31))
      }
      entry = entry.next
    } else {
      // a return reached before its call was linearized: backtrack
      const top = stack.pop()
      if (top === undefined) return 'illegal'
      state = top.state
      linearized[top.node.op >> 5] &= ~(1 << (top.node.op & 31))
      unlift(top.node)
      entry = top.node.next
    }
  }
  return 'ok'
}

/** Checks a whole history; the worst result of its parts. */
export function checkOperations<S, I, O> (model: Model<S, I, O>, ops: Array<Operation<I, O>>, budget = 1_000_000): CheckResult {
  const parts = model.partition !== undefined ? model.partition(ops) : [ops]
  let result: CheckResult = 'ok'
  for (const part of parts) {
    const r = checkPart(model, part, budget)
    if (r === 'illegal') return 'illegal'
    if (r === 'unknown') result = 'unknown'
  }
  return result
}

// ---- a replicated key-value register ----

export type KvInput = { kind: 'put', key: string, value: number } | { kind: 'get', key: string }
/** a get's output: the value read (null when absent); a put's output is unused */
export type KvOutput = number | null
export type KvOperation = Operation<KvInput, KvOutput>

/** One register per key: puts overwrite, gets must return the latest value. Partitioned per key. */
export const kvModel: Model<number | null, KvInput, KvOutput> = {
  init: () => null,
  step: (state, input, output) => input.kind === 'put'
    ? { ok: true, state: input.value }
    : { ok: output === state, state },
  hash: state => String(state),
  partition: ops => {
    const byKey = new Map<string, KvOperation[]>()
    for (const o of ops) {
      let list = byKey.get(o.input.key)
      if (list === undefined) byKey.set(o.input.key, list = [])
      list.push(o)
    }
    return [...byKey.values()]
  }
}
