// In-process nodes for the clone and durability benches: plain libp2p (TCP + Noise + Yamux
// on 127.0.0.1), a cell runtime whose replies wait for the clone service that `gate` names,
// a bundle exchange and a clone service with the stores asked for.
import type { Libp2p } from '@libp2p/interface'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createCellRuntime } from '../../src/cells/runtime.js'
import type { CellRuntime } from '../../src/cells/runtime.js'
import { createEd25519Key } from '../../src/wire/keys.js'
import { createFrameSigner } from '../../src/wire/frame.js'
import { createBundleExchange, createBundleStore } from '../../src/messaging/index.js'
import type { BundleExchange } from '../../src/messaging/index.js'
import type { AppTable } from '../../src/topology/app-table.js'
import { createCloneService } from '../../src/topology/clones.js'
import type { CloneService } from '../../src/topology/clones.js'
import { CloneStore } from '../../src/topology/clone-store.js'
import { createPlainLibp2p } from './plain-libp2p.js'

export const MESH = 'bench'
export const ADDRESS = 'bench/counter#0'
/** a counter whose state grows a little (the last 100 counts), like a real cell's */
export const COUNTER = 'export default class Counter { count = 0; items = []; increment (by = 1) { this.count += by; this.items.push(this.count); if (this.items.length > 100) this.items.shift(); return this.count } }'

export interface BenchNode { id: string, libp2p: Libp2p, runtime: CellRuntime, bundles: BundleExchange, clones: CloneService, dir: string }

export interface BenchNodeOptions {
  mesh: string
  table: AppTable
  /** the clone service whose gate replies wait for (set once the primary exists) */
  gate: () => CloneService | undefined
  /** persist held clones in <dir>/clones */
  clones?: boolean
  /** persist the primaries' states in <dir>/cells */
  primaries?: boolean
  /** the runtime's own state files (<dir>/data) */
  runtimeData?: boolean
}

export async function createBenchNode (o: BenchNodeOptions): Promise<BenchNode> {
  const key = await createEd25519Key()
  const dir = mkdtempSync(join(tmpdir(), 'stem-bench-clones-'))
  const libp2p = await createPlainLibp2p(key)
  const runtime = createCellRuntime({ dataDir: o.runtimeData === true ? join(dir, 'data') : undefined, replyGate: async (address, version) => { await o.gate()?.gate(address, version) } })
  runtime.start()
  const signer = createFrameSigner(key)
  const bundles = createBundleExchange({ libp2p, store: createBundleStore(join(dir, 'bundles')), signer }, { mesh: o.mesh })
  await bundles.start()
  const store = o.clones === true ? new CloneStore(join(dir, 'clones')) : undefined
  const primaries = o.primaries === true ? new CloneStore(join(dir, 'cells')) : undefined
  const clones = createCloneService({ libp2p, runtime, bundles, signer, table: o.table, store, primaries }, { mesh: o.mesh })
  await clones.start()
  return { id: libp2p.peerId.toString(), libp2p, runtime, bundles, clones, dir }
}

export async function stopBenchNodes (nodes: BenchNode[]): Promise<void> {
  for (const n of nodes) {
    await n.clones.stop()
    await n.runtime.stop()
    await n.bundles.stop()
    await n.libp2p.stop()
    rmSync(n.dir, { recursive: true, force: true })
  }
}
