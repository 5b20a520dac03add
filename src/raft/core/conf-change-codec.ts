// The data of a ConfChange log entry: one type byte, then the node id in UTF-8.
import { ConfChangeType } from '../types.js'
import type { ConfChange } from '../types.js'

const MAX_NODE_ID_BYTES = 256
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeConfChange (cc: ConfChange): Uint8Array {
  validateConfChange(cc)
  const id = encoder.encode(cc.node)
  const out = new Uint8Array(1 + id.length)
  out[0] = cc.type
  out.set(id, 1)
  return out
}

export function decodeConfChange (data: Uint8Array): ConfChange {
  if (data.length < 2) throw new Error(`raft conf change: ${data.length} bytes is too short`)
  if (data.length > 1 + MAX_NODE_ID_BYTES) throw new Error(`raft conf change: ${data.length} bytes is too long`)
  const type = data[0]
  if (!(type in ConfChangeType) || typeof ConfChangeType[type] !== 'string') throw new Error(`raft conf change: unknown type ${type}`)
  let node: string
  try {
    node = decoder.decode(data.subarray(1))
  } catch {
    throw new Error('raft conf change: node id is not valid UTF-8')
  }
  return { type: type as ConfChangeType, node }
}

export function validateConfChange (cc: ConfChange): void {
  if (typeof ConfChangeType[cc.type] !== 'string') throw new Error(`raft conf change: unknown type ${String(cc.type)}`)
  if (typeof cc.node !== 'string' || cc.node === '') throw new Error('raft conf change: node id is empty')
  if (encoder.encode(cc.node).length > MAX_NODE_ID_BYTES) throw new Error(`raft conf change: node id longer than ${MAX_NODE_ID_BYTES} bytes`)
}
