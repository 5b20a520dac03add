// The clone protocol between two real libp2p nodes with real cell runtimes: holding,
// state streaming, promotion, and refusal of bad, forged and out-of-place requests.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { buildBundle } from '../../src/cells/index.js'
import { createEd25519Key, encodePublicKey } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { readOne, writeFrame } from '../../src/messaging/framing.js'
import { CloneAnswer, CloneRequest } from '../../src/wire/proto/clone.js'
import { Frame } from '../../src/wire/proto/frame.js'
import { AppTable } from '../../src/topology/app-table.js'
import { createCloneService } from '../../src/topology/clones.js'
import type { CloneService } from '../../src/topology/clones.js'
import type { AppAnnouncement } from '../../src/topology/announcement.js'
import { createStaticDirectory } from '../../src/messaging/directory.js'
import { repoRoot } from '../support/stem-process.js'
import { waitFor } from '../support/wait.js'
import { MESH, connectAll, createTestNode, type TestNode } from '../messaging/helpers.js'

const ADDRESS = 'shop/counter#0'
const limits = { memory: 16 * 2 ** 20, timeout: 500, mailbox: 100 }

describe('warm clones: the clone protocol', function () {
  this.timeout(60_000)
  let primary: TestNode
  let cloneNode: TestNode
  let stranger: TestNode
  let clones: CloneService
  let primaryClones: CloneService
  let table: AppTable
  let bundleHash: string
  let owner: Uint8Array

  const announce = (over: Partial<AppAnnouncement> = {}): void => {
    table.update({
      app: 'shop', owner: 'o', leader: primary.id, term: 1n, version: BigInt(Date.now()) * 1000n, members: [primary.id],
      instances: [{ address: ADDRESS, node: primary.id, epoch: 1n, state: 'transformed', clones: [cloneNode.id] }],
      cells: [{ name: 'counter', replicas: 1, timeout: 500 }], routes: [], reverted: false, ...over
    })
  }

  before(async () => {
    // the primary's runtime answers through its clone service's gate
    let gate: CloneService | undefined
    primary = await createTestNode(createStaticDirectory(), { runtime: { replyGate: async (address, version) => { await gate?.gate(address, version) } } })
    cloneNode = await createTestNode(createStaticDirectory())
    stranger = await createTestNode(createStaticDirectory())
    await connectAll([primary, cloneNode, stranger])
    table = new AppTable()
    clones = createCloneService({ libp2p: cloneNode.libp2p, runtime: cloneNode.runtime, bundles: cloneNode.bundles, signer: createFrameSigner(cloneNode.key), table }, { mesh: MESH })
    primaryClones = createCloneService({ libp2p: primary.libp2p, runtime: primary.runtime, bundles: primary.bundles, signer: createFrameSigner(primary.key), table }, { mesh: MESH })
    gate = primaryClones
    await clones.start()
    await primaryClones.start()
    const ownerKey = await createEd25519Key()
    owner = encodePublicKey(ownerKey.publicKey)
    const bundle = await buildBundle({ entry: join(repoRoot, 'examples', 'counter', 'counter.js'), app: 'shop', cell: 'counter', limits, owner: ownerKey })
    await primary.bundles.publish(bundle)
    bundleHash = bundle.hash
    await primary.runtime.transform(ADDRESS, bundle, { owner, limits })
    announce()
  })

  after(async () => {
    await clones.stop()
    await primaryClones.stop()
    await Promise.all([primary, cloneNode, stranger].map(async n => { await n.stop() }))
  })

  it('an answer leaves only after the clone holds the state; promotion resumes from it', async () => {
    await primaryClones.hold(cloneNode.id, ADDRESS, bundleHash, owner, limits)
    assert.ok(clones.holds(ADDRESS))
    // warm: the clone node's cell host for the app runs before any promotion
    const warmHost = cloneNode.runtime.hostPids().get('shop')
    assert.ok(warmHost !== undefined, 'the hold starts the app\'s cell host')
    await primary.runtime.ask(ADDRESS, 'increment', [4])
    await primary.runtime.ask(ADDRESS, 'increment', [3])
    // the clone already holds version 2 ({count: 7}): promote it and read the state back
    await primaryClones.promote(cloneNode.id, ADDRESS)
    assert.deepEqual(await cloneNode.runtime.ask(ADDRESS, 'get'), { count: 7 })
    assert.equal(cloneNode.runtime.hostPids().get('shop'), warmHost, 'the promotion used the warm cell host')
    assert.equal(clones.holds(ADDRESS), false)
    await cloneNode.runtime.revert(ADDRESS)
  })

  it('a clone held for an app that is then removed is dropped, with its idle cell host', async () => {
    await primaryClones.hold(cloneNode.id, ADDRESS, bundleHash, owner, limits)
    assert.ok(cloneNode.runtime.hostPids().has('shop'))
    clones.forgetApp('shop')
    assert.equal(clones.holds(ADDRESS), false)
    assert.equal(cloneNode.runtime.hostPids().has('shop'), false)
  })

  it('refuses holds from a node outside the app group, states from a non-primary, and unknown clones', async () => {
    const strangerClones = createCloneService({ libp2p: stranger.libp2p, runtime: stranger.runtime, bundles: stranger.bundles, signer: createFrameSigner(stranger.key), table }, { mesh: MESH })
    await assert.rejects(strangerClones.hold(cloneNode.id, ADDRESS, bundleHash, owner, limits), /is not in the group of app shop/)
    await assert.rejects(strangerClones.promote(cloneNode.id, 'shop/counter#5'), /no clone of shop\/counter#5/)
    await primaryClones.hold(cloneNode.id, ADDRESS, bundleHash, owner, limits)
    const fromStranger = createFrameSigner(stranger.key)
    const stream = await stranger.libp2p.dialProtocol(cloneNode.libp2p.peerId, clones.protocol)
    writeFrame(stream, fromStranger.sign('cell', CloneRequest.encode({ state: { address: ADDRESS, state: '{"count":999}', version: 99n } })))
    const answer = CloneAnswer.decode(Frame.decode(await readOne(stream, 4096, AbortSignal.timeout(10_000))).cell as Uint8Array)
    assert.equal(answer.ok, false)
    assert.match(answer.error, /is not the primary of shop\/counter#0/)
    await primaryClones.promote(cloneNode.id, ADDRESS)
    assert.notDeepEqual(await cloneNode.runtime.ask(ADDRESS, 'get'), { count: 999 }, 'a state from a node that is not the primary was refused')
    await cloneNode.runtime.revert(ADDRESS)
  })

  it('drops garbage, forged and oversized frames and keeps serving', async () => {
    const cases: Uint8Array[] = [
      new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
      createFrameSigner(await createEd25519Key()).sign('cell', CloneRequest.encode({ promote: { address: ADDRESS } })),
      createFrameSigner(stranger.key).sign('code', CloneRequest.encode({ promote: { address: ADDRESS } }))
    ]
    for (const bytes of cases) {
      const stream = await stranger.libp2p.dialProtocol(cloneNode.libp2p.peerId, clones.protocol)
      writeFrame(stream, bytes)
      await waitFor(() => stream.status !== 'open', { what: 'the clone node to drop the stream' })
    }
    const oversized = await stranger.libp2p.dialProtocol(cloneNode.libp2p.peerId, clones.protocol)
    const prefix = new Uint8Array(4)
    new DataView(prefix.buffer).setUint32(0, 64 * 1024 * 1024)
    oversized.send(prefix)
    await waitFor(() => oversized.status !== 'open', { what: 'the oversized stream to be dropped' })
    // still serving the primary
    await primaryClones.hold(cloneNode.id, ADDRESS, bundleHash, owner, limits)
    assert.ok(clones.holds(ADDRESS))
  })
})
