// A raft node in its own process, for the multi-process transport test and the raft
// benches: libp2p on loopback, the libp2p raft transport, a RaftHost with disk storage
// per group under --data. Driven by JSON lines on stdin, reports JSON lines on stdout.
//   argv[2]: JSON RaftNodeConfig
//   stdin:  {"cmd":"peers","peers":[{"id","addrs"}]} | {"cmd":"propose","group","data"} |
//           {"cmd":"status","brief"?} | {"cmd":"load","group","count","size"}
//   stdout: {"event":"ready","id","addrs","ms"} | {"event":"leader",...GroupStatus} |
//           {"event":"applied","group","index","data"} | {"event":"status",...} | {"event":"load-done",...}
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { loadOrCreateKey } from '../../../src/wire/keys.js'
import { createFrameSigner } from '../../../src/wire/frame.js'
import { setLogLevel } from '../../../src/util/logger.js'
import { createLibp2pRaftTransport } from '../../../src/raft/transport/libp2p-transport.js'
import { createRaftHost } from '../../../src/raft/multi/raft-host.js'
import type { GroupRaftOptions } from '../../../src/raft/multi/raft-host.js'
import { DiskLogStorage } from '../../../src/raft/storage/disk-log-storage.js'
import { EntryType } from '../../../src/raft/types.js'
import { createTestLibp2p, introduce } from './libp2p-node.js'

export interface RaftNodeConfig {
  data: string
  mesh: string
  groups: string[]
  /** peer ids of the founding members (same order on every node) */
  members: string[]
  tickMs: number
  raft: GroupRaftOptions
  /** print every applied entry (tests); benches only count */
  reportApplied: boolean
  /** on becoming leader of a group, propose `elected <term>` (failover bench: time to a commit) */
  proposeOnLeader?: boolean
  port?: number
  /** listen host (default 127.0.0.1) */
  host?: string
}

setLogLevel('silent')
const config = JSON.parse(process.argv[2]) as RaftNodeConfig
const emit = (event: string, body: object = {}): void => { process.stdout.write(JSON.stringify({ event, ...body }) + '\n') }

const key = await loadOrCreateKey(join(config.data, 'key'))
const libp2p = await createTestLibp2p(key, config.port ?? 0, config.host)
const transport = createLibp2pRaftTransport({ libp2p, signer: createFrameSigner(key) }, { mesh: config.mesh })
await transport.start()
const host = createRaftHost({ transport }, { self: libp2p.peerId.toString(), tickMs: config.tickMs, raft: config.raft })
const appliedCount = new Map<string, number>()
const waiters = new Map<string, { target: number, resolve: () => void }>()
/** resolved at every apply: the load generator waits here while its window is full */
const progressWaiters: Array<() => void> = []
const storages: DiskLogStorage[] = []
for (const group of config.groups) {
  const storage = await DiskLogStorage.open(join(config.data, 'groups', group))
  storages.push(storage)
  appliedCount.set(group, 0)
  host.addGroup(group, {
    storage,
    bootstrap: config.members,
    apply: (entries) => {
      let n = appliedCount.get(group)!
      for (const e of entries) {
        if (e.type !== EntryType.Normal || e.data.length === 0) continue
        n++
        if (config.reportApplied) emit('applied', { group, index: e.index, data: new TextDecoder().decode(e.data) })
      }
      appliedCount.set(group, n)
      const w = waiters.get(group)
      if (w !== undefined && n >= w.target) {
        waiters.delete(group)
        w.resolve()
      }
      for (const wake of progressWaiters.splice(0)) wake()
    }
  })
}
host.addEventListener('leader-change', (evt) => {
  const st = evt.detail
  emit('leader', st)
  if (config.proposeOnLeader === true && st.role === 'leader') host.propose(st.group, new TextEncoder().encode(`elected ${st.term}`))
})
host.start()

async function load (group: string, count: number, size: number): Promise<void> {
  // keep a window of proposals in flight; the host batches whatever accumulates per Ready
  const payload = new Uint8Array(size).fill(7)
  const start = performance.now()
  const base = appliedCount.get(group)!
  const done = new Promise<void>(resolve => { waiters.set(group, { target: base + count, resolve }) })
  let proposed = 0
  const window = 16384
  while (proposed < count) {
    const inFlight = proposed - (appliedCount.get(group)! - base)
    const n = Math.min(count - proposed, window - inFlight, 2048)
    if (n > 0) {
      // throws ProposalDroppedError if this node lost leadership: reported as an error
      host.proposeBatch(group, Array.from({ length: n }, () => payload))
      proposed += n
      await new Promise(resolve => setImmediate(resolve))
    } else {
      await new Promise<void>(resolve => { progressWaiters.push(resolve) })
    }
  }
  await done
  emit('load-done', { group, entries: count, ms: performance.now() - start })
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line)
  try {
    switch (cmd.cmd) {
      case 'peers':
        for (const p of cmd.peers) void introduce(libp2p, p.id, p.addrs)
        break
      case 'propose':
        host.propose(cmd.group, new TextEncoder().encode(cmd.data))
        break
      case 'status':
        emit('status', {
          cpu: process.cpuUsage(),
          host: host.stats,
          transport: transport.stats,
          quiesced: host.groupIds().filter(g => host.status(g).quiesced).length,
          groups: cmd.brief === true ? [] : host.groupIds().map(g => host.status(g))
        })
        break
      case 'load':
        load(cmd.group, cmd.count, cmd.size).catch(err => { emit('error', { message: (err as Error).message }) })
        break
      default:
        emit('error', { message: `unknown command ${String(cmd.cmd)}` })
    }
  } catch (err) {
    emit('error', { message: (err as Error).message })
  }
})

process.stdin.on('end', () => {
  // parent gone: leave
  void (async () => {
    await host.stop()
    await transport.stop()
    for (const s of storages) await s.close()
    await libp2p.stop()
    process.exit(0)
  })()
})

emit('ready', { id: libp2p.peerId.toString(), addrs: libp2p.getMultiaddrs().map(a => a.toString()), ms: performance.now() })
