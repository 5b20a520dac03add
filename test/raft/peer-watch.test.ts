// The raft host leaning on an outside failure detector (PeerWatch, the node's pings): a
// covered peer gets rare beacons, and the detector's verdicts (peerDown, peerUp) stand in
// for the host's own silence timer. The hosts' own silence limit is set far beyond every
// deadline here, so only the detector's verdicts can judge a peer.
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RaftHost } from '../../src/raft/multi/raft-host.js'
import { DiskLogStorage } from '../../src/raft/storage/disk-log-storage.js'
import { MemoryNetwork } from '../../src/raft/transport/memory-transport.js'
import { EntryType, StateRole } from '../../src/raft/types.js'
import { waitFor } from '../support/wait.js'
import { proposeUntilApplied } from './support/propose.js'

const NODES = ['n1', 'n2', 'n3']
const GROUPS = Array.from({ length: 6 }, (_, i) => `w${i}`)
const enc = new TextEncoder()
const dec = new TextDecoder()

describe('raft multi-group host: an outside failure detector covers its peers', function () {
  this.timeout(120_000)
  let dir: string
  let net: MemoryNetwork
  const hosts = new Map<string, RaftHost>()
  const storages: DiskLogStorage[] = []
  const applied = new Map<string, string[]>()
  /** per node: the peers its detector covers */
  const covered = new Map<string, Set<string>>()

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-watch-'))
    net = new MemoryNetwork()
    for (const node of NODES) {
      covered.set(node, new Set())
      const host = new RaftHost({ transport: net.transport(node), peerWatch: { covers: peer => covered.get(node)!.has(peer) } }, {
        self: node,
        tickMs: 50,
        livenessTimeoutMs: 600_000,
        coveredLivenessIntervalMs: 600_000
      })
      hosts.set(node, host)
      for (const group of GROUPS) {
        const storage = await DiskLogStorage.open(join(dir, node, group))
        storages.push(storage)
        applied.set(`${node}/${group}`, [])
        host.addGroup(group, {
          storage,
          bootstrap: NODES,
          apply: entries => { for (const e of entries) if (e.type === EntryType.Normal && e.data.length > 0) applied.get(`${node}/${group}`)!.push(dec.decode(e.data)) }
        })
      }
      host.start()
    }
  })
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    hosts.clear()
    for (const s of storages.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  const all = (): RaftHost[] => [...hosts.values()]
  const allQuiet = (): boolean => all().every(h => GROUPS.every(g => h.status(g).quiesced))
  const leaderOf = (g: string): string | undefined => NODES.find(n => hosts.get(n)!.status(g).role === StateRole.Leader)
  const coverAll = (): void => { for (const n of NODES) covered.set(n, new Set(NODES.filter(p => p !== n))) }
  const delivered = (link: string): number => net.delivered.get(link) ?? 0

  it('beacons a covered peer rarely, and an uncovered one every beacon interval', async () => {
    // n1 and n2 cover each other; nobody covers n3, and n3 covers nobody
    covered.get('n1')!.add('n2')
    covered.get('n2')!.add('n1')
    await waitFor(allQuiet, { what: 'all groups quiet', timeout: 60_000 })
    // the uncovered link n1->n3 is the clock: a window of 8 beacons on it (a wake in the
    // window sends raft traffic on every link, so such a window is measured again)
    let covertBeacons: number | undefined
    await waitFor(async () => {
      const wakes = all().map(h => h.stats.wakes)
      const fast = delivered('n1->n3')
      const slow = delivered('n1->n2') + delivered('n2->n1')
      await waitFor(() => delivered('n1->n3') >= fast + 8, { what: '8 beacons on the uncovered link', timeout: 30_000 })
      if (all().some((h, i) => h.stats.wakes !== wakes[i]) || !allQuiet()) {
        await waitFor(allQuiet, { what: 'quiet again after a wake', timeout: 60_000 })
        return false
      }
      covertBeacons = delivered('n1->n2') + delivered('n2->n1') - slow
      return true
    }, { what: 'a window with no wake-up', timeout: 90_000 })
    assert.equal(covertBeacons, 0, `the covered link n1<->n2 carried ${covertBeacons} frames while n1->n3 carried 8 beacons`)
  })

  it('does not wait for a member the detector judged down: its leader goes quiet without it', async () => {
    coverAll()
    await waitFor(allQuiet, { what: 'all groups quiet', timeout: 60_000 })
    const leader = leaderOf('w0')!
    const victim = NODES.find(n => n !== leader)!
    net.isolate(victim)
    for (const n of NODES.filter(n => n !== victim)) {
      covered.get(n)!.delete(victim)
      hosts.get(n)!.peerDown(victim)
    }
    const rest = NODES.filter(n => n !== victim)
    await proposeUntilApplied(() => { const l = leaderOf('w0'); if (l !== undefined && l !== victim) hosts.get(l)!.propose('w0', enc.encode('without it')) },
      () => rest.every(n => applied.get(`${n}/w0`)!.includes('without it')), 'a commit without the member judged down')
    // the member judged down lags, yet the leader does not keep ticking for it
    await waitFor(() => { const l = leaderOf('w0'); return l !== undefined && l !== victim && hosts.get(l)!.status('w0').quiesced }, { what: 'w0 quiet again without the member judged down', timeout: 30_000 })
    assert.ok(!applied.get(`${victim}/w0`)!.includes('without it'))
  })

  it('wakes the quiet groups a suspect leads: its followers elect another leader if it stays silent', async () => {
    coverAll()
    await waitFor(allQuiet, { what: 'all groups quiet', timeout: 60_000 })
    const victim = leaderOf('w0')!
    const led = GROUPS.filter(g => hosts.get(victim)!.status(g).role === StateRole.Leader)
    net.isolate(victim)
    const rest = NODES.filter(n => n !== victim)
    for (const n of rest) hosts.get(n)!.peerSuspect(victim)
    await waitFor(() => led.every(g => rest.some(n => hosts.get(n)!.status(g).role === StateRole.Leader)), { what: 'new leaders for the groups the suspect led', timeout: 30_000 })
  })

  it('a leader judged down is forgotten once the lease its followers granted it ran out: the lowest live voter takes over within a few ticks, not an election timeout', async () => {
    coverAll()
    await waitFor(allQuiet, { what: 'all groups quiet', timeout: 60_000 })
    const victim = leaderOf('w0')!
    const led = GROUPS.filter(g => hosts.get(victim)!.status(g).role === StateRole.Leader)
    const rest = NODES.filter(n => n !== victim)
    // the lease a follower granted runs out 10 ticks (500 ms) after the leader's last frame
    // reached it: wait until the victim has sent nothing for longer (its groups are quiet,
    // and it beacons covered peers only every 600 s)
    let frames = -1
    let since = Date.now()
    await waitFor(() => {
      const now = rest.reduce((sum, n) => sum + delivered(`${victim}->${n}`), 0)
      if (now !== frames) { frames = now; since = Date.now() }
      return Date.now() - since > 600
    }, { what: 'the victim to be silent longer than a lease', timeout: 30_000 })
    net.isolate(victim)
    const ticksAt = rest.map(n => hosts.get(n)!.stats.ticks)
    for (const n of rest) hosts.get(n)!.peerDown(victim)
    await waitFor(() => led.every(g => rest.some(n => hosts.get(n)!.status(g).role === StateRole.Leader)), { what: 'new leaders for the groups the dead leader led', timeout: 30_000 })
    // an election timeout is 10 ticks (randomized up to 20): the followers would refuse
    // (pre-)votes that long after waking. Forgetting the dead leader, they grant at once,
    // and the member picked campaigns after CAMPAIGN_SOON_TICKS
    const ticks = rest.map((n, i) => hosts.get(n)!.stats.ticks - ticksAt[i])
    assert.ok(Math.max(...ticks) < 10, `new leaders after ${ticks.join('/')} ticks of the survivors`)
    for (const g of led) assert.equal(hosts.get([...rest].sort()[0])!.status(g).role, StateRole.Leader, `${g}: the lowest live voter leads`)
  })

  it('wakes the groups of a member the detector judges up again, and catches it up', async () => {
    coverAll()
    await waitFor(allQuiet, { what: 'all groups quiet', timeout: 60_000 })
    const leader = leaderOf('w0')!
    const victim = NODES.find(n => n !== leader)!
    net.isolate(victim)
    for (const n of NODES.filter(n => n !== victim)) hosts.get(n)!.peerDown(victim)
    const rest = NODES.filter(n => n !== victim)
    await proposeUntilApplied(() => { const l = leaderOf('w0'); if (l !== undefined && l !== victim) hosts.get(l)!.propose('w0', enc.encode('while away')) },
      () => rest.every(n => applied.get(`${n}/w0`)!.includes('while away')), 'a commit while the member is away')
    await waitFor(() => rest.every(n => GROUPS.every(g => hosts.get(n)!.status(g).quiesced)), { what: 'the others quiet without it', timeout: 60_000 })
    // back on the network: nothing flows between quiet groups until the detector says it is up
    net.heal()
    for (const n of rest) hosts.get(n)!.peerUp(victim)
    await waitFor(() => applied.get(`${victim}/w0`)!.includes('while away'), { what: 'the member judged up again to catch up', timeout: 30_000 })
  })
})

describe('raft multi-group host: a quiet leader frozen while its peers are covered', function () {
  this.timeout(120_000)
  let dir: string
  const hosts = new Map<string, RaftHost>()
  const storages: DiskLogStorage[] = []
  /** per node: ms its clock is ahead (a jump simulates a freeze: its next timer fires that late) */
  const skew = new Map<string, number>()
  afterEach(async () => {
    for (const h of hosts.values()) await h.stop()
    hosts.clear()
    for (const s of storages.splice(0)) await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('wakes every quiet group after a freeze longer than a peer may stay silent', async () => {
    dir = await mkdtemp(join(tmpdir(), 'stem-raft-frozen-'))
    const net = new MemoryNetwork()
    for (const node of NODES) {
      skew.set(node, 0)
      const clock = {
        now: () => Date.now() + skew.get(node)!,
        setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
        clearTimeout: (handle: unknown) => { clearTimeout(handle as NodeJS.Timeout) }
      }
      // every peer covered, its beacons and silence limit far beyond the test: only the freeze can wake a group
      const host = new RaftHost({ transport: net.transport(node), clock, peerWatch: { covers: peer => peer !== node } }, { self: node, tickMs: 50, coveredLivenessIntervalMs: 600_000 })
      hosts.set(node, host)
      for (const group of GROUPS) {
        const storage = await DiskLogStorage.open(join(dir, node, group))
        storages.push(storage)
        host.addGroup(group, { storage, bootstrap: NODES })
      }
      host.start()
    }
    const all = [...hosts.values()]
    await waitFor(() => all.every(h => GROUPS.every(g => h.status(g).quiesced)), { what: 'all groups quiet', timeout: 60_000 })
    const leader = NODES.find(n => hosts.get(n)!.status('w0').role === StateRole.Leader)!
    const host = hosts.get(leader)!
    const wakes = host.stats.wakes
    skew.set(leader, 5_000)
    await waitFor(() => host.stats.wakes >= wakes + GROUPS.length, { what: 'the frozen host to wake its quiet groups', timeout: 20_000 })
  })
})
