import assert from 'node:assert/strict'
import { SnapshotAssembler, splitSnapshot } from '../../src/raft/multi/snapshot-chunks.js'
import type { SnapshotPiece } from '../../src/raft/multi/snapshot-chunks.js'
import { BatchBuilder, decodeBatch } from '../../src/raft/multi/raft-batch.js'
import { makeMessage } from '../../src/raft/core/index.js'
import { MessageType } from '../../src/raft/types.js'
import type { Message } from '../../src/raft/types.js'
import * as pb from '../../src/wire/proto/raft.js'

function snapMessage (bytes: number, index = 50, term = 3): Message {
  const data = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) data[i] = (i * 7) & 0xff
  return makeMessage({ type: MessageType.Snap, from: 'n1', to: 'n2', term, snapshot: { metadata: { index, term, conf: { voters: ['n1', 'n2'], learners: [] } }, data } })
}

/** the pieces as the receiver decodes them from batches */
function overTheWire (pieces: SnapshotPiece[]): SnapshotPiece[] {
  return pieces.map((p, i) => {
    const b = new BatchBuilder()
    b.addSnapshotPiece('g', p, i === pieces.length - 1)
    const [received] = decodeBatch(b.encode(), 'n1', 'n2')
    assert.equal(received.group, 'g')
    return received.piece!
  })
}

describe('snapshots in pieces', () => {
  it('splits a snapshot and puts it together again, through the wire codec', () => {
    const m = snapMessage(10_000)
    const pieces = overTheWire(splitSnapshot(m, 3000))
    assert.deepEqual(pieces.map(p => [p.offset, p.data.length]), [[0, 3000], [3000, 3000], [6000, 3000], [9000, 1000]])
    const a = new SnapshotAssembler(1 << 20)
    const results = pieces.map(p => a.add('n1', 'g', p))
    assert.deepEqual(results.slice(0, 3), [undefined, undefined, undefined])
    assert.deepEqual(results[3]?.snapshot, m.snapshot)
    assert.equal(a.heldBytes, 0)
  })

  it('refuses lost, replayed, out-of-order, overlong and oversized pieces, dropping the partial snapshot', () => {
    const pieces = overTheWire(splitSnapshot(snapMessage(10_000), 3000))
    const fresh = (): SnapshotAssembler => new SnapshotAssembler(1 << 20)
    // a lost piece
    let a = fresh()
    a.add('n1', 'g', pieces[0])
    assert.throws(() => a.add('n1', 'g', pieces[2]), /expected the one at 3000 \(a piece was lost or replayed\)/)
    assert.throws(() => a.add('n1', 'g', pieces[1]), /belongs to no snapshot under way/, 'the partial snapshot was dropped')
    // a replayed piece
    a = fresh()
    a.add('n1', 'g', pieces[0])
    a.add('n1', 'g', pieces[1])
    assert.throws(() => a.add('n1', 'g', pieces[1]), /expected the one at 6000/)
    // a piece without a beginning, or from another sender or group
    a = fresh()
    assert.throws(() => a.add('n1', 'g', pieces[1]), /no snapshot under way/)
    a.add('n1', 'g', pieces[0])
    assert.throws(() => a.add('n3', 'g', pieces[1]), /no snapshot under way/)
    assert.throws(() => a.add('n1', 'other', pieces[1]), /no snapshot under way/)
    // a piece of another snapshot in the middle of one
    a = fresh()
    a.add('n1', 'g', pieces[0])
    const other = overTheWire(splitSnapshot(snapMessage(10_000, 60), 3000))
    assert.throws(() => a.add('n1', 'g', other[1]), /no snapshot under way \(index 60\)/)
    // past the announced total, empty, or over the limit
    a = fresh()
    assert.throws(() => a.add('n1', 'g', { ...pieces[3], offset: 0, total: 500 }), /runs past the total 500/)
    assert.throws(() => a.add('n1', 'g', { ...pieces[0], data: new Uint8Array(0) }), /runs past the total/)
    assert.throws(() => new SnapshotAssembler(5000).add('n1', 'g', pieces[0]), /announces 10000 bytes \(limit 5000\)/)
    assert.throws(() => a.add('n1', 'g', { ...pieces[0], total: -1 }), /announces -1 bytes/)
    // a new beginning replaces a partial snapshot (the leader sends it again)
    a = fresh()
    a.add('n1', 'g', pieces[0])
    a.add('n1', 'g', pieces[1])
    for (const p of pieces.slice(0, 3)) assert.equal(a.add('n1', 'g', p), undefined)
    assert.ok(a.add('n1', 'g', pieces[3]) !== undefined)
  })

  it('holds at most the limit in partial snapshots, dropping the oldest', () => {
    const a = new SnapshotAssembler(25_000)
    const pieces = splitSnapshot(snapMessage(10_000), 3000)
    a.add('n1', 'g1', pieces[0])
    a.add('n1', 'g2', pieces[0])
    a.add('n1', 'g3', pieces[0])
    assert.equal(a.heldBytes, 20_000)
    assert.throws(() => a.add('n1', 'g1', pieces[1]), /no snapshot under way/, 'the oldest was dropped for the newest')
    a.dropGroup('g2')
    assert.equal(a.heldBytes, 10_000)
  })

  it('refuses a batch whose piece has no message, or carries entries', () => {
    const data = new Uint8Array(10)
    const base = { groups: [], heartbeats: [], heartbeatResponses: [] }
    assert.throws(() => decodeBatch(pb.RaftBatch.encode({ ...base, snapshotChunks: [{ group: 'g', offset: 0, total: 10, data }] }), 'n1', 'n2'), /malformed raft batch: snapshot piece without its message/)
    const withEntries = { type: MessageType.Snap, term: 1, logTerm: 0, index: 0, entries: [{ term: 1, index: 1, type: 0, data }], commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0) }
    assert.throws(() => decodeBatch(pb.RaftBatch.encode({ ...base, snapshotChunks: [{ group: 'g', message: withEntries, offset: 0, total: 10, data }] }), 'n1', 'n2'), /malformed raft batch/)
  })
})
