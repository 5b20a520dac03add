import assert from 'node:assert/strict'
import { access, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import type { PeersResponse, StatusResponse, ContributeResponse } from '../../src/api/types.js'
import { waitFor } from '../support/wait.js'
import { decodeInvite, encodeInvite } from '../../src/mesh/invite.js'
import { generateMeshKey } from '../../src/mesh/mesh-config.js'
import { apiUrlOf, spawnStem, stem, stemJson, printLogsIfFailed, stopAll, tempDataDir, type StemProcess } from '../support/stem-process.js'

const peersOf = async (p: StemProcess): Promise<PeersResponse> => stemJson<PeersResponse>(['peers', '--data', p.dataDir])
const inviteOf = async (p: StemProcess): Promise<string> => {
  const r = await stem(['invite', '--data', p.dataDir])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim()
}

describe('mesh with real stem processes', function () {
  this.timeout(240_000)
  afterEach(printLogsIfFailed)
  after(stopAll)

  it('5 nodes join through one invite, discover each other, gossip capacity, leave and expire; a restart rejoins', async () => {
    const first = await spawnStem(['start', '--cpu', '2', '--memory', '2GiB', '--cells', '50'], await tempDataDir()).ready()
    const token = await inviteOf(first)
    const joiners = await Promise.all([1, 2, 3, 4].map(async i => spawnStem(['join', token, '--cpu', String(i), '--memory', '512MiB', '--cells', '10'], await tempDataDir()).ready()))
    const all = [first, ...joiners]
    const ids = all.map(p => p.peerId())

    // every node's `stem peers --json` lists the 4 others with their capacity
    for (const [i, p] of all.entries()) {
      const others = ids.filter(id => id !== ids[i])
      const view = await waitFor(async () => {
        const v = await peersOf(p)
        return others.every(id => v.peers.some(e => e.id === id)) && v
      }, { timeout: 60_000, what: `node ${i + 1} to see the 4 others` })
      assert.equal(view.self.id, ids[i])
      for (const e of view.peers) {
        assert.ok(e.addrs.length > 0)
        assert.equal(typeof e.lastSeen, 'number')
        const expected = e.id === ids[0] ? { cpu: 2, memory: 2 * 2 ** 30, cells: 50 } : { cpu: ids.indexOf(e.id), memory: 512 * 2 ** 20, cells: 10 }
        assert.deepEqual(e.capacity, expected)
      }
    }

    // node 5 only had node 1's invite: a direct connection to anyone else came through the DHT
    const fifth = joiners[3]
    await waitFor(async () => (await peersOf(fifth)).peers.some(e => e.connected && e.id !== ids[0]), { timeout: 60_000, what: 'node 5 to connect to a node learned through the DHT' })
    const status = await stemJson<StatusResponse>(['status', '--data', fifth.dataDir])
    assert.equal(status.id, ids[4])
    assert.equal(status.mesh, 'home')
    assert.deepEqual(status.apps, [])
    assert.equal(status.cells, 0)
    assert.ok(status.connections.some(id => id !== ids[0]))

    // a live contribution change reaches everyone
    const changed = await stemJson<ContributeResponse>(['contribute', '--memory', '1GiB', '--cells', '7', '--data', joiners[0].dataDir])
    assert.deepEqual(changed.capacity, { cpu: 1, memory: 2 ** 30, cells: 7 })
    for (const p of all.filter(p => p !== joiners[0])) {
      await waitFor(async () => (await peersOf(p)).peers.find(e => e.id === ids[1])?.capacity.cells === 7, { what: 'the contribution change to reach every node' })
    }

    // SIGINT: a graceful leave, dropped by the others
    const leaver = joiners[1]
    leaver.signal('SIGINT')
    assert.equal(await leaver.exited, 0, leaver.stderr)
    for (const p of all.filter(p => p !== leaver)) {
      await waitFor(async () => !(await peersOf(p)).peers.some(e => e.id === ids[2]), { what: 'the leaver to be dropped' })
    }

    // kill -9: no goodbye, the others expire it
    const victim = joiners[2]
    victim.signal('SIGKILL')
    await victim.exited
    for (const p of [first, joiners[0], joiners[3]]) {
      await waitFor(async () => !(await peersOf(p)).peers.some(e => e.id === ids[3]), { what: 'the killed node to expire' })
    }

    // restart with the same data dir and no invite: same peer id, back in everyone's view
    const again = await spawnStem(['start'], leaver.dataDir).ready()
    assert.equal(again.peerId(), ids[2])
    for (const p of [first, joiners[0], joiners[3]]) {
      await waitFor(async () => (await peersOf(p)).peers.some(e => e.id === ids[2]), { timeout: 60_000, what: 'the restarted node to rejoin' })
    }
  })

  it('joins with the token from a file or stdin (never in argv); a wrong mesh key says the peer refused it and does not claim to have joined', async () => {
    const first = await spawnStem(['start'], await tempDataDir()).ready()
    const token = await inviteOf(first)
    const dir = await tempDataDir()
    const file = join(dir, 'invite.txt')
    await writeFile(file, `${token}\n`, { mode: 0o600 })
    const fromFile = await spawnStem(['join', '--invite-file', file], join(dir, 'node')).ready()
    const fromStdin = await spawnStem(['join', '-'], await tempDataDir(), [], { stdin: `${token}\n` }).ready()
    for (const p of [fromFile, fromStdin]) {
      await waitFor(async () => (await peersOf(p)).peers.some(e => e.id === first.peerId()), { timeout: 60_000, what: 'the joiner to see the first node' })
      assert.ok(!(await readFile(`/proc/${p.child.pid as number}/cmdline`, 'utf8')).includes(token.slice(5)), 'the token is not in argv')
      assert.match(p.stdout, /^mesh: home$/m)
    }
    const none = await stem(['join', '--data', await tempDataDir()])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /^stem: stem join needs an invite token/)
    const missing = await stem(['join', '--invite-file', join(dir, 'nope'), '--data', await tempDataDir()])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /^stem: cannot read the invite file .*nope: ENOENT/)

    // an invite with another mesh key: the first node refuses the handshake
    const wrong = spawnStem(['join', '-'], await tempDataDir(), [], { stdin: encodeInvite({ ...decodeInvite(token), key: generateMeshKey() }) })
    await wrong.ready()
    await waitFor(() => /bootstrap \S+: peer refused the connection: usually a wrong or stale invite/.test(wrong.stderr), { timeout: 60_000, what: 'the refusal to be explained' })
    assert.match(wrong.stdout, /^mesh: home \(not joined yet/m)
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /joined mesh/)
  })

  it('refuses malformed, truncated and foreign invite tokens with one line and exit 2, writing nothing', async () => {
    const first = await spawnStem(['start'], await tempDataDir()).ready()
    const token = await inviteOf(first)
    const bad = ['nonsense', token.slice(0, token.length - 5), 'stem9' + token.slice(5), 'stem1' + '0OIl', token.replace(/.$/, c => c === 'a' ? 'b' : 'a')]
    for (const t of bad) {
      const dir = join(await tempDataDir(), 'fresh')
      const r = await stem(['join', t, '--data', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
      assert.equal(r.code, 2, `${t}: ${r.stderr}`)
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
      assert.match(r.stderr, /^stem: (not a Stem invite token|invite token|unsupported invite token version 9)/)
      await assert.rejects(access(dir), 'nothing was written')
    }
  })

  it('reports an unusable data dir, a port in use, an unreachable bootstrap and a missing API token clearly', async () => {
    // data dir under a regular file
    const blocked = await spawnStem(['start'], await tempDataDir()).ready()
    const r1 = await stem(['start', '--data', join(blocked.dataDir, 'identity.key', 'sub'), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(r1.code, 1)
    assert.match(r1.stderr, /^stem: data dir .* is not usable: ENOTDIR/m)

    // listen port and API port in use
    const server: Server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const r2 = await stem(['start', '--data', await tempDataDir(), '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0'])
      assert.equal(r2.code, 1)
      assert.match(r2.stderr, /^stem: cannot listen on \/ip4\/127.0.0.1\/tcp\/\d+: address already in use/m)
      const r3 = await stem(['start', '--data', await tempDataDir(), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`])
      assert.equal(r3.code, 1)
      assert.match(r3.stderr, /^stem: cannot start the control API on 127.0.0.1:\d+: address already in use/m)
    } finally {
      server.close()
    }

    // a second node on the same data dir
    const r4 = await stem(['start', '--data', blocked.dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    assert.equal(r4.code, 1)
    assert.match(r4.stderr, /is in use by another running stem node/)

    // unreachable bootstrap: keeps running, retries with backoff and says so
    const lonely = spawnStem(['start', '--bootstrap', `/ip4/127.0.0.1/tcp/1/p2p/${blocked.peerId()}`], await tempDataDir())
    await lonely.ready()
    await waitFor(() => (lonely.stderr.match(/bootstrap .* unreachable .*retrying in \d+s/g) ?? []).length >= 2, { timeout: 60_000, what: 'retries to be reported' })
    assert.ok(lonely.running)
    // …and does not claim to have joined
    assert.match(lonely.stdout, /^mesh: home \(not joined yet: no bootstrap peer reached/m)
    assert.doesNotMatch(lonely.stdout + lonely.stderr, /joined mesh/)

    // the control API refuses requests without the token
    const response = await fetch(`${await apiUrlOf(blocked.dataDir)}/v1/status`)
    assert.equal(response.status, 401)
    assert.match(((await response.json()) as { error: string }).error, /missing or wrong API token/)
    const wrong = await fetch(`${await apiUrlOf(blocked.dataDir)}/v1/peers`, { headers: { authorization: 'Bearer nope' } })
    assert.equal(wrong.status, 401)
  })
})
