import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../src/raft/multi/raft-host.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'
import { MemoryNetwork } from '../../src/raft/transport/memory-transport.js'
import { ConfChangeType, EntryType, StateRole } from '../../src/raft/types.js'
import type { Entry } from '../../src/raft/types.js'
import { waitFor } from '../support/wait.js'
import { proposeUntilApplied } from './support/propose.js'

const NODES = ['n1', 'n2', 'n3']
const enc = new TextEncoder()
const dec = new TextDecoder()

describe('raft multi-group host: a member removed while away and added again', function () {
  this.timeout(180_000)
  let dir: string
  let net: MemoryNetwork
  const hosts = new Map<string, RaftHost>()
  const storages = new Map<string, DiskLogStorage>()
  const applied = new Map<string, string[]>()

  const apply = (node: string) => (entries: Entry[]): void => {
    for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) applied.get(node)!.push(dec.decode(e.data))
  }
  async function open (node: string, bootstrap?: string[]): Promise<void> {
    const storage = await DiskLogStorage.open(join(dir, node, 'g'))
    storages.set(node, storage)
    applied.set(node, [])
    hosts.get(node)!.addGroup('g', { storage, bootstrap, apply: apply(node), applySnapshot: () => {} })
  }
  /** a restart from the node's disk, as after kill -9: the group is opened again from its log */
  async function restart (node: string): Promise<void> {
    const host = hosts.get(node)!
    await host.stop()
    await storages.get(node)!.close()
    const fresh = new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 50 })
    hosts.set(node, fresh)
    await open(node)
    fresh.start()
  }
  const leaderOf = (among: string[]): string | undefined => among.find(n => hosts.get(n)!.status('g').role === StateRole.Leader)

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-readd-'))
    net = new MemoryNetwork()
    for (const node of NODES) {
      hosts.set(node, new RaftHost({ transport: net.transport(node) }, { self: node, tickMs: 50 }))
      await open(node, NODES)
      hosts.get(node)!.start()
    }
  })
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    for (const s of storages.values()) await s.close()
    hosts.clear()
    storages.clear()
    await rm(dir, { recursive: true, force: true })
  })

  for (const compact of [false, true]) {
    for (const when of ['as soon as its log holds the add', 'once it applied the add']) {
      it(`counts toward the quorum after a restart ${when}${compact ? ', the leader having compacted its log' : ''}`, async () => {
        const leader = await waitFor(() => leaderOf(NODES), { what: 'a leader' })
        const [away, other] = NODES.filter(n => n !== leader)
        const L = (): RaftHost => hosts.get(leaderOf([leader, other]) ?? leader)!
        net.isolate(away)
        await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.RemoveNode, node: away }) },
          () => !hosts.get(leader)!.status('g').members.includes(away) && !hosts.get(other)!.status('g').members.includes(away), `${away} removed`)
        for (let i = 0; i < 5; i++) {
          await proposeUntilApplied(() => { L().propose('g', enc.encode(`without ${i}`)) }, () => applied.get(leader)!.includes(`without ${i}`) && applied.get(other)!.includes(`without ${i}`), `without ${i}`)
        }
        if (compact) await L().snapshotAndCompact('g', enc.encode('state'))
        net.heal()
        const addedAt = (node: string): boolean => hosts.get(node)!.status('g').members.includes(away)
        await proposeUntilApplied(() => { L().proposeConfChange('g', { type: ConfChangeType.AddNode, node: away }) }, () => addedAt(leader) && addedAt(other), `${away} added again`)
        if (when === 'once it applied the add') await waitFor(() => addedAt(away), { what: `${away} applies its own addition` })
        else await waitFor(() => hosts.get(away)!.status('g').commit > 0 || storages.get(away)!.lastIndex() > 0, { what: `${away} hears from the group` })
        await restart(away)
        // as in a mesh at rest: the group goes quiet before the next fault
        await waitFor(() => NODES.every(n => hosts.get(n)!.status('g').quiesced), { what: 'the group quiet', timeout: 60_000 })
        // the other member goes away: only the re-added one can make a quorum with the leader
        net.isolate(other)
        const leaderNow = await waitFor(() => leaderOf([leader, away]), { what: `a leader among ${leader} and ${away}`, timeout: 60_000 })
        await proposeUntilApplied(() => { hosts.get(leaderOf([leader, away]) ?? leaderNow)!.propose('g', enc.encode('after')) },
          () => [leader, away].some(n => applied.get(n)!.includes('after')),
          'a commit with the re-added member', 60_000)
      })
    }
  }
})
