import assert from 'node:assert/strict'
import { decodeAppAnnouncement, encodeAppAnnouncement, isNewer, MAX_ANNOUNCEMENT_BYTES, MAX_REASON_CHARS } from '../../src/topology/announcement.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import { AppTable } from '../../src/topology/app-table.js'
import { ACCEPT_LOSS_WINDOW_MS, checkAcceptLoss, signOwnerRequest, openOwnerRequest } from '../../src/topology/owner-request.js'
import { createEd25519Key } from '../../src/wire/keys.js'

const announcement = (over: Partial<AppAnnouncement> = {}): AppAnnouncement => ({
  app: 'shop',
  owner: 'owner-id',
  leader: 'n1',
  term: 2n,
  version: 10n,
  members: ['n1', 'n2', 'n3'],
  instances: [
    { address: 'shop/counter#0', node: 'n2', epoch: 1n, state: 'transformed', clones: [], clonesReady: [] },
    { address: 'shop/counter#1', node: 'n3', epoch: 1n, state: 'transformed', clones: [], clonesReady: [] }
  ],
  cells: [{ name: 'counter', replicas: 2, timeout: 100 }],
  routes: [{ method: 'GET', path: '/count', cell: 'counter', handler: 'get' }],
  reverted: false,
  ...over
})

describe('app announcements and the app table', () => {
  it('round-trips and refuses malformed, oversized and inconsistent announcements', () => {
    assert.deepEqual(decodeAppAnnouncement(encodeAppAnnouncement(announcement())), announcement())
    assert.throws(() => decodeAppAnnouncement(new Uint8Array(MAX_ANNOUNCEMENT_BYTES + 1)), /at most/)
    assert.throws(() => decodeAppAnnouncement(new Uint8Array([0x0a, 0x05, 0x01])), /invalid app announcement/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement()).subarray(0, 20)), /invalid app announcement/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ app: '../x' }))), /bad app name/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ leader: '' }))), /no leader/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ instances: [{ address: 'other/counter#0', node: 'n1', epoch: 1n, state: 'transformed', clones: [], clonesReady: [] }] }))), /not one of the app's cells/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ instances: [{ address: 'shop/counter#2', node: 'n1', epoch: 1n, state: 'transformed', clones: [], clonesReady: [] }] }))), /not one of the app's cells/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ instances: [{ address: 'shop/counter#0', node: 'n1', epoch: 1n, state: 'transformed', clones: ['n2'], clonesReady: ['n3'] }] }))), /ready clone that is not one of its clones/)
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ routes: [{ method: 'GET', path: '/', cell: 'ghost', handler: 'x' }] }))), /unknown cell/)
    // a lost instance's reason travels with it, bounded
    const lost = { address: 'shop/counter#0', node: 'n1', epoch: 2n, state: 'lost', clones: [], clonesReady: [], reason: 'waiting for n2' }
    assert.deepEqual(decodeAppAnnouncement(encodeAppAnnouncement(announcement({ instances: [lost] }))).instances[0].reason, 'waiting for n2')
    assert.throws(() => decodeAppAnnouncement(encodeAppAnnouncement(announcement({ instances: [{ ...lost, reason: 'x'.repeat(MAX_REASON_CHARS + 1) }] }))), /^Error: invalid app announcement: instance shop\/counter#0 has a reason of 1025 characters \(at most 1024\)$/)
  })

  it('keeps the newest announcement per app and resolves addresses through it', () => {
    const table = new AppTable()
    assert.equal(table.update(announcement()), true)
    assert.equal(table.update(announcement({ version: 9n, leader: 'old' })), false, 'an older one is ignored (replay)')
    assert.ok(isNewer(announcement({ term: 3n, version: 1n }), announcement()))
    assert.deepEqual(table.resolve('shop/counter#1'), { peer: 'n3', epoch: 1 })
    const peers = new Set([1, 2, 3, 4].map(() => table.resolve('shop/counter')?.peer))
    assert.deepEqual([...peers].sort(), ['n2', 'n3'], 'app/cell is balanced over the replicas')
    assert.equal(table.resolve('shop/nothing'), undefined)
    assert.equal(table.replicas('shop', 'counter'), 2)
    assert.deepEqual(table.listApps(), [{ app: 'shop', owner: 'owner-id', leader: 'n1', term: 2, members: ['n1', 'n2', 'n3'] }])
    assert.deepEqual(table.listCells('shop')[0].cells.map(c => c.node), ['n2', 'n3'])
    assert.equal(table.update(announcement({ version: 11n, instances: [{ address: 'shop/counter#0', node: 'n2', epoch: 2n, state: 'lost', clones: [], clonesReady: [], reason: 'waiting for n3' }] })), true)
    assert.deepEqual(table.listCells('shop')[0].cells.map(c => [c.state, c.reason]), [['lost', 'waiting for n3']], 'stem cells shows why')
    assert.equal(table.update(announcement({ version: 12n, reverted: true })), true)
    assert.deepEqual(table.listApps(), [])
  })

  it('owner requests: signature checked, forged and malformed ones refused', async () => {
    const key = await createEd25519Key()
    const signed = await signOwnerRequest(key, { op: 'revert', app: 'shop', at: 5 })
    const opened = await openOwnerRequest(signed)
    assert.equal(opened.request.op, 'revert')
    await assert.rejects(openOwnerRequest({ ...signed, request: signed.request.replace('shop', 'shoq') }), /bad signature/)
    const other = await createEd25519Key()
    const forged = await signOwnerRequest(other, { op: 'revert', app: 'shop', at: 5 })
    await assert.rejects(openOwnerRequest({ ...signed, signature: forged.signature }), /bad signature/)
    await assert.rejects(openOwnerRequest(null), /invalid owner request/)
    await assert.rejects(openOwnerRequest({ request: '{}', owner: 'AAAA', signature: '' }), /not an Ed25519 public key/)
    await assert.rejects(openOwnerRequest({ ...signed, request: 'x'.repeat(300_000) }), /at most/)
    const odd = await signOwnerRequest(key, { op: 'explode', app: 'shop', at: 1 } as never)
    await assert.rejects(openOwnerRequest(odd), /unknown op/)
    // a restart that accepts the loss of what missing nodes hold: a flag, true or false only
    assert.equal((await openOwnerRequest(await signOwnerRequest(key, { op: 'restart', app: 'shop', at: 6, cell: 'counter', acceptLoss: true }))).request.op, 'restart')
    const loose = await signOwnerRequest(key, { op: 'restart', app: 'shop', at: 7, acceptLoss: 'yes' } as never)
    await assert.rejects(openOwnerRequest(loose), /^Error: invalid owner request: restart acceptLoss must be true or false$/)
    // an accept-loss gives up acknowledged state: signed near the node's clock, and never twice
    const now = 1_000_000_000_000
    assert.doesNotThrow(() => { checkAcceptLoss(now - 60_000, now, undefined) })
    assert.doesNotThrow(() => { checkAcceptLoss(now + 60_000, now, now - 1) })
    assert.throws(() => { checkAcceptLoss(now - ACCEPT_LOSS_WINDOW_MS - 1000, now, undefined) }, /^Error: owner request refused: an accept-loss must be signed within 5 min of this node's clock, this one is 301 s off$/)
    assert.throws(() => { checkAcceptLoss(now + ACCEPT_LOSS_WINDOW_MS + 1000, now, undefined) }, /301 s off/)
    assert.throws(() => { checkAcceptLoss(now - 5000, now, now - 5000) }, /^Error: owner request refused: replayed/)
    assert.throws(() => { checkAcceptLoss(now - 6000, now, now - 5000) }, /replayed/)
    // the flag cannot be added to a signed restart
    const plain = await signOwnerRequest(key, { op: 'restart', app: 'shop', at: 8 })
    await assert.rejects(openOwnerRequest({ ...plain, request: plain.request.replace('}', ',"acceptLoss":true}') }), /bad signature/)
  })
})
