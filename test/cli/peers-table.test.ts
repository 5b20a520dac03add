// `stem peers` as a table: this node first and marked, then its peers.
import assert from 'node:assert/strict'
import { peersTable } from '../../src/cli/commands/peers.js'
import type { PeerEntry, PeerPath } from '../../src/api/types.js'

function entry (id: string, lastSeen: number, connected: boolean, path?: PeerPath): PeerEntry {
  return { id, addrs: [], capacity: { cpu: 2, memory: 2 ** 30, cells: 20 }, free: { cpu: 1, memory: 2 ** 29, cells: 18 }, lastSeen, connected, ...(path !== undefined ? { path } : {}) }
}

describe('cli: stem peers table', () => {
  it('lists the local node first, marked *, then every peer with how it is reached', () => {
    const now = 1_000_000
    const text = peersTable({ self: entry('SELF', now, false), peers: [entry('PEER-A', now - 3000, true, 'webrtc'), entry('PEER-C', now - 1000, true, 'relayed'), entry('PEER-B', now - 12_000, false)] }, now)
    const lines = text.trimEnd().split('\n')
    assert.equal(lines.length, 6)
    assert.match(lines[0], /^ {3}PEER\s+CPU\s+MEMORY\s+CELLS\s+FREE cpu\/mem\/cells\s+CONNECTED\s+PATH\s+SEEN$/)
    assert.match(lines[1], /^\* {2}SELF\s+2\s+1GiB\s+20\s+1\/512MiB\/18\s+-\s+-\s+-$/)
    assert.match(lines[2], /^ {3}PEER-A\s.*\syes\s+webrtc\s+3s ago$/)
    assert.match(lines[3], /^ {3}PEER-C\s.*\syes\s+relayed\s+1s ago$/)
    assert.match(lines[4], /^ {3}PEER-B\s.*\sno\s+-\s+12s ago$/)
    assert.equal(lines[5], '* this node')
  })

  it('a node without peers lists itself', () => {
    const text = peersTable({ self: entry('SELF', 0, false), peers: [] }, 0)
    assert.match(text.split('\n')[1], /^\* {2}SELF\s/)
  })

  it('shows peer ids short (first 4 … last 6) and a node\'s name before its id', () => {
    const id = '12D3KooWJ8ZsR7yQ4hPbN9xXGmVq2LdKt5uEwA6cF1oYzRadrU'
    const named = { ...entry(id, 0, true), name: 'node-2' }
    const text = peersTable({ self: entry('12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAbcdef', 0, false), peers: [named] }, 0)
    const lines = text.split('\n')
    assert.match(lines[1], /^\* {2}12D3…Abcdef\s/)
    assert.match(lines[2], /^ {3}node-2\(12D3…zRadrU\)\s/)
    assert.equal(text.includes(id), false, 'no full id in the table')
  })
})
