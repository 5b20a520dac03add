// The simulation's replicated state machine: a key-value register store. Commands carry a
// unique operation id, and a command already applied is ignored (as real client sessions
// do), so a proposal duplicated by the network takes effect once.

export interface KvCommand {
  op: number
  key: string
  value: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeCommand (c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify([c.op, c.key, c.value]))
}

export function decodeCommand (data: Uint8Array): KvCommand {
  const [op, key, value] = JSON.parse(decoder.decode(data)) as [number, string, number]
  return { op, key, value }
}

export class KvMachine {
  readonly values = new Map<string, number>()
  readonly appliedOps = new Set<number>()

  /** Applies a command; returns false when its operation was applied before. */
  apply (c: KvCommand): boolean {
    if (this.appliedOps.has(c.op)) return false
    this.appliedOps.add(c.op)
    this.values.set(c.key, c.value)
    return true
  }

  get (key: string): number | null {
    return this.values.get(key) ?? null
  }

  encode (): Uint8Array {
    return encoder.encode(JSON.stringify([[...this.values], [...this.appliedOps]]))
  }

  static decode (data: Uint8Array): KvMachine {
    const m = new KvMachine()
    if (data.length === 0) return m
    const [values, ops] = JSON.parse(decoder.decode(data)) as [Array<[string, number]>, number[]]
    for (const [k, v] of values) m.values.set(k, v)
    for (const o of ops) m.appliedOps.add(o)
    return m
  }
}
