// A netns bench runs on the namespace internet of scripts/netns/run.sh: started outside it,
// the bench re-runs its own file inside run.sh (with the layout it asks for), or says why it
// is skipped where the machine cannot build namespaces (run.sh prints its own reason and
// exits 0 there).
import { spawnSync } from 'node:child_process'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { netnsLayout, type NetnsLayout } from '../../test/netns/netns-stem.js'

export interface NetnsBenchOptions {
  /** the bench's own compiled file (import.meta.url) */
  url: string
  /** run.sh's layout flags, e.g. ['--pubs', '1', '--homes', '2'] */
  layout: string[]
  /** the host the bench process itself runs in (e.g. 'pub2'); default the root namespace */
  host?: string
}

/** Runs `run` inside the namespace internet, re-running the bench's file inside run.sh first when needed. */
export async function netnsBench (options: NetnsBenchOptions, run: (layout: NetnsLayout) => Promise<void>): Promise<void> {
  const layout = netnsLayout()
  if (typeof layout !== 'string') { await run(layout); return }
  if (process.getuid?.() !== 0) { console.log('bench netns: skipped: needs root for ip netns'); return }
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  const self = fileURLToPath(options.url)
  const command = options.host === undefined
    ? [process.execPath, '--no-node-snapshot', self]
    : ['bash', '-c', `exec ip netns exec "$STEM_NETNS_PREFIX-${options.host}" "$0" "$@"`, process.execPath, '--no-node-snapshot', self]
  const r = spawnSync('bash', [join(root, 'scripts/netns/run.sh'), ...options.layout, '--', ...command], { stdio: 'inherit' })
  process.exitCode = r.status ?? 1
}

/** the WAN impairment a line was measured at: latency only where sch_netem exists */
export function impairmentLabel (layout: NetnsLayout, rtt: number, loss: number): string {
  return layout.impairment.startsWith('netem') ? `${rtt} ms RTT, ${loss}% loss` : `${loss}% loss, no latency (sch_netem missing)`
}
