// Each announced instance carries the revision it runs and each cell the revision it
// should run and its last rollback: `stem cells` and `stem publish` read readiness per
// revision from them (an instance still on the previous revision is not current).
import assert from 'node:assert/strict'
import { decodeAppAnnouncement, encodeAppAnnouncement } from '../../src/topology/announcement.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import { AppTable } from '../../src/topology/app-table.js'
import { cellRevision } from '../../src/topology/cell-revision.js'

const v1 = cellRevision({ bundle: 'a'.repeat(64), memory: 1024, timeout: 100, mailbox: 10 })
const v2 = cellRevision({ bundle: 'b'.repeat(64), memory: 1024, timeout: 100, mailbox: 10 })

const announcement = (version: bigint, over: Partial<AppAnnouncement> = {}): AppAnnouncement => ({
  app: 'shop',
  owner: 'owner-id',
  leader: 'n1',
  term: 1n,
  version,
  members: ['n1'],
  instances: [
    { address: 'shop/counter#0', node: 'n1', epoch: 1n, state: 'transformed', clones: [], clonesReady: [], revision: v2 },
    { address: 'shop/counter#1', node: 'n2', epoch: 1n, state: 'transformed', clones: [], clonesReady: [], revision: v1 },
    { address: 'shop/counter#2', node: 'n3', epoch: 1n, state: 'starting', clones: [], clonesReady: [] }
  ],
  cells: [{ name: 'counter', replicas: 3, timeout: 100, revision: v2 }],
  routes: [],
  reverted: false,
  ...over
})

describe('revisions in announcements and cell listings', () => {
  it('round-trip through the wire and mark which instances run the current revision', () => {
    const table = new AppTable()
    table.update(decodeAppAnnouncement(encodeAppAnnouncement(announcement(1n))))
    const listing = table.listCells('shop')[0]
    assert.deepEqual(listing.cells.map(c => [c.address, c.revision, c.current]), [
      ['shop/counter#0', v2, true],
      ['shop/counter#1', v1, false],
      ['shop/counter#2', undefined, false]
    ])
    assert.deepEqual(listing.rollbacks, [])
  })

  it('list the cells whose rollout was rolled back, with the failed revision, its cause and the publish it came from', () => {
    const table = new AppTable()
    const rolledBack = announcement(2n, { cells: [{ name: 'counter', replicas: 3, timeout: 100, revision: v1, rollback: { revision: v2, error: 'boom on init', at: 1234n } }] })
    table.update(decodeAppAnnouncement(encodeAppAnnouncement(rolledBack)))
    const listing = table.listCells('shop')[0]
    assert.deepEqual(listing.rollbacks, [{ cell: 'counter', revision: v2, error: 'boom on init', at: 1234 }])
    assert.deepEqual(listing.cells.map(c => c.current), [false, true, false])
  })
})
