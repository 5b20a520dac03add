import assert from 'node:assert/strict'
import { AppTable } from '../../src/topology/app-table.js'
import { placementRefusal } from '../../src/topology/placement-authority.js'
import { createEd25519Key, encodePublicKey, peerIdOf } from '../../src/wire/keys.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'

describe('placement authority: who may place an app\'s cells on this node', () => {
  let table: AppTable
  let ownerKey: Uint8Array
  let strangerKey: Uint8Array

  before(async () => {
    const owner = await createEd25519Key()
    ownerKey = encodePublicKey(owner.publicKey)
    strangerKey = encodePublicKey((await createEd25519Key()).publicKey)
    table = new AppTable()
    const a: AppAnnouncement = {
      app: 'shop', owner: peerIdOf(owner.publicKey), leader: 'L', term: 2n, version: 1n, members: ['L', 'M', 'N'],
      instances: [], cells: [{ name: 'counter', replicas: 1, timeout: 500 }], routes: [], reverted: false
    }
    assert.equal(table.update(a), true)
  })

  it('lets the leader and the other members of the app\'s group place it, with the owner\'s code', () => {
    assert.equal(placementRefusal(table, 'L', 'shop/counter#0', ownerKey), undefined)
    assert.equal(placementRefusal(table, 'M', 'shop/counter#0', ownerKey), undefined)
    assert.equal(placementRefusal(table, 'N', 'shop/counter#0'), undefined)
  })

  it('refuses a node outside the group', () => {
    assert.match(placementRefusal(table, 'X', 'shop/counter#0', ownerKey) ?? '', /X is not in the group of app shop/)
  })

  it('refuses code signed by another key than the app owner\'s, and a malformed key', () => {
    assert.match(placementRefusal(table, 'L', 'shop/counter#0', strangerKey) ?? '', /not by the owner of app shop/)
    assert.match(placementRefusal(table, 'L', 'shop/counter#0', new Uint8Array([1, 2, 3])) ?? '', /malformed owner key/)
  })

  it('lets anyone place an app this node has not heard of (its first announcement fences it)', () => {
    assert.equal(placementRefusal(table, 'X', 'other/counter#0', strangerKey), undefined)
  })
})
