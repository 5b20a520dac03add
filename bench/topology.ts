// Topology benchmarks: the cost of a placement round on a large mesh, of a no-op round
// (what a leader pays on every capacity change), and of manifest validation.
import { parseDocument } from 'yaml'
import { parseManifest } from '../src/topology/manifest.js'
import { place } from '../src/topology/placement.js'
import type { DesiredApp, Placement } from '../src/topology/placement-accounting.js'
import type { NodeCapacity } from '../src/topology/types.js'

const MiB = 2 ** 20

/** median wall time (ms) of `runs` calls */
function time (runs: number, fn: () => unknown): number {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    fn()
    samples.push(performance.now() - t)
  }
  return samples.sort((a, b) => a - b)[Math.floor(runs / 2)]
}

function mesh (n: number): NodeCapacity[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `12D3KooW${String(i).padStart(6, '0')}`,
    contributed: { cpu: 4, memory: 8192 * MiB, cells: 200 },
    alive: true,
    zone: `zone${i % 7}`
  }))
}

function app (instances: number): DesiredApp {
  return {
    app: 'shop',
    cells: {
      a: { replicas: instances / 2, clones: 1, memory: 32 * MiB },
      b: { replicas: instances / 4, clones: 2, memory: 64 * MiB },
      c: { replicas: instances / 4, clones: 0, memory: 16 * MiB }
    }
  }
}

/** the simplest scheme: primaries and clones dealt round-robin, no limits, no spreading rules */
function roundRobin (desired: DesiredApp, nodes: NodeCapacity[]): Placement {
  const out: Placement = {}
  let k = 0
  for (const [cell, spec] of Object.entries(desired.cells)) {
    out[cell] = Array.from({ length: spec.replicas }, () => ({
      primary: nodes[k++ % nodes.length].id,
      clones: Array.from({ length: spec.clones }, () => nodes[k++ % nodes.length].id)
    }))
  }
  return out
}

function fmt (ms: number): string {
  return ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(0)} µs`
}

/** `name` is one token (SPEC §7 line format); `what` says what was measured. */
function line (name: string, what: string, figure: number, baselineName: string, baseline: number): void {
  console.log(`bench ${name}: ${fmt(figure)} for ${what} (${baselineName} ${fmt(baseline)}, ratio ${(figure / baseline).toFixed(2)})`)
}

const nodes = mesh(100)
const desired = app(1000)
const fresh = time(5, () => place({ desired, current: {}, nodes }))
const naive = time(5, () => roundRobin(desired, nodes))
line('placement', '1000 instances (+1000 clones) on 100 nodes', fresh, 'round-robin', naive)

const placed = place({ desired, current: {}, nodes }).placement
const steady = time(9, () => place({ desired, current: placed, nodes }))
line('placement-steady', 'a round with nothing to change, same app', steady, 'fresh placement', fresh)

const failed = nodes.map((n, i) => i % 10 === 0 ? { ...n, alive: false } : n)
const failover = time(5, () => place({ desired, current: placed, nodes: failed }))
line('placement-failover', 'a round after 10 of 100 nodes died', failover, 'fresh placement', fresh)

const manifest = `app: shop
cells:
${Array.from({ length: 50 }, (_, i) => `  cell${i}:\n    code: ./cells/cell${i}.ts\n    replicas: 3\n    clones: 1\n    memory: 64MiB\n    timeout: 500ms\n    mailbox: 1000\n    links: [cell${(i + 1) % 50}]`).join('\n')}
routes:
${Array.from({ length: 50 }, (_, i) => `  - GET /api/cell${i}/:id -> cell${i}.get\n  - POST /api/cell${i} -> cell${i}.create`).join('\n')}
`
const parsed = time(51, () => parseManifest(manifest, 'shop.yaml'))
const yamlOnly = time(51, () => parseDocument(manifest).toJS())
line('manifest-parse', 'parse + validate of 50 cells and 100 routes', parsed, 'YAML parse only', yamlOnly)
