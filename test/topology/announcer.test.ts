// What a node does with its own cells when it learns an announcement: a primary the
// announcement shows running on another node is reverted keeping its state as a copy for a
// recovery (revertMoved); one of a reverted app or a scaled-away instance just reverts.
import assert from 'node:assert/strict'
import { AppAnnouncer } from '../../src/topology/announcer.js'
import type { AppAnnouncerComponents } from '../../src/topology/announcer.js'
import { AppTable } from '../../src/topology/app-table.js'
import type { AppState } from '../../src/topology/app-state.js'
import type { HostedApp } from '../../src/topology/app-groups.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { createLogger } from '../../src/util/logger.js'

const SELF = 'A'

function state (over: Partial<AppState> = {}): AppState {
  return {
    app: 'shop', owner: 'o', ownerKey: '', publishedHash: '', lastRequestAt: 0, reverted: [], dissolving: false,
    manifest: { app: 'shop', routes: [], cells: { counter: { code: './counter.js', replicas: 1, clones: 0, memory: 2 ** 24, timeout: 500, mailbox: 100, bundle: 'b'.repeat(64) } } },
    placement: { counter: [{ primary: 'B', clones: [] }] },
    epochs: { 'shop/counter#0': 2 },
    previous: {}, rolledBack: {}, reservations: [],
    ...over
  }
}

async function announcer (): Promise<{ a: AppAnnouncer, reverted: string[], moved: string[] }> {
  const reverted: string[] = []
  const moved: string[] = []
  const components = {
    self: SELF,
    raft: { status: () => ({ term: 3, members: [SELF, 'B'] }) },
    runtime: {
      cells: () => [{ address: 'shop/counter#0', status: 'transformed' }],
      revert: async (address: string) => { reverted.push(address) }
    },
    table: new AppTable(),
    pubsub: { publish: async () => {} },
    signer: createFrameSigner(await createEd25519Key()),
    logger: createLogger('test'),
    learned: () => {},
    reservations: () => {},
    revertMoved: async (address: string, why: string) => { moved.push(`${address}: ${why}`) }
  } as unknown as AppAnnouncerComponents
  return { a: new AppAnnouncer(components, { mesh: 'm' }), reverted, moved }
}

const hosted = (): HostedApp => ({ group: 'shop~00000001', app: 'shop', running: new Map([['shop/counter#0 B', { address: 'shop/counter#0', node: 'B', role: 'primary', revision: 'r', state: 'transformed' }]]), version: 1n, lastAnnounced: 0 }) as unknown as HostedApp

describe('app announcer: this node\'s cells an announcement no longer places here', () => {
  it('a primary now running on another node is reverted keeping its state as a copy (sim:mesh seed 6415)', async () => {
    const { a, reverted, moved } = await announcer()
    a.announce(hosted(), state())
    assert.deepEqual(moved, ['shop/counter#0: app shop now runs it on B'])
    assert.deepEqual(reverted, [])
  })

  it('a reverted app\'s primary and a scaled-away instance are just reverted', async () => {
    const dissolving = await announcer()
    dissolving.a.announce(hosted(), state({ dissolving: true }))
    assert.deepEqual(dissolving.reverted, ['shop/counter#0'])
    assert.deepEqual(dissolving.moved, [])
    const scaled = await announcer()
    const s = state()
    s.manifest.cells.counter.replicas = 0
    scaled.a.announce(hosted(), { ...s, placement: { counter: [] } })
    assert.deepEqual(scaled.reverted, ['shop/counter#0'])
    assert.deepEqual(scaled.moved, [])
  })
})
