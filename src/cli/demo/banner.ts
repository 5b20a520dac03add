// What the demo prints once its cloud runs: where to look, what to type. Every URL and
// command in it works as printed (test/cli/demo.test.ts runs them).
import { dirname, join } from 'node:path'
import type { SpecCellListing } from '../placement.js'
import { shortPeerId } from '../../util/peer-id-text.js'
import type { DemoNode } from './cloud.js'
import { DEMO_APP } from './start-cloud.js'

export interface DemoGuide {
  /** the node the URLs and commands talk to */
  home: number
  dashboard: string
  gateway: string
  curl: string[]
  commands: string[]
  /** the node to kill to watch a failover: the one running the counter's primary */
  failover?: { node: number, pid: number, kill: string }
  nodes: Array<{ node: number, peerId: string, pid: number, dataDir: string, api: string, gateway: string, dashboard: string, log: string }>
}

const quote = (text: string): string => /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`

/** The guide: URLs and commands against a node that does not run the counter, so they keep working after the failover. */
export function demoGuide (nodes: DemoNode[], cells: SpecCellListing[]): DemoGuide {
  const primary = nodes.find(n => n.peerId === cells[0]?.node)
  const home = nodes.find(n => n !== primary) ?? nodes[0]
  const data = `--data ${quote(home.dataDir)}`
  const count = `${home.gateway}/${DEMO_APP}/count`
  return {
    home: home.index,
    dashboard: home.dashboard,
    gateway: home.gateway,
    curl: [
      `curl -s ${count}`,
      `curl -s -X POST ${count} -H 'content-type: application/json' -d '{"by":5}'`
    ],
    commands: [
      `npx stem peers ${data}`,
      `npx stem apps ${data}`,
      `npx stem cells ${DEMO_APP} ${data}`,
      `npx stem call ${DEMO_APP}/counter increment 5 ${data}`
    ],
    // with fewer than 3 nodes the app's Raft group has no majority without the killed node
    failover: nodes.length >= 3 && primary !== undefined && primary !== home ? { node: primary.index, pid: primary.pid, kill: `kill -9 ${primary.pid}` } : undefined,
    nodes: nodes.map(n => ({ node: n.index, peerId: n.peerId, pid: n.pid, dataDir: n.dataDir, api: n.api, gateway: n.gateway, dashboard: n.dashboard, log: n.log }))
  }
}

export function formatBanner (guide: DemoGuide, cells: SpecCellListing[]): string {
  const roles = (peerId: string): string => [
    ...cells.filter(c => c.node === peerId).map(c => `runs ${c.address}`),
    ...cells.filter(c => c.clones.includes(peerId)).map(c => `holds a clone of ${c.address}`)
  ].join(', ')
  const lines = [
    '',
    `Stem demo: a friend cloud of ${guide.nodes.length} nodes on this machine, running examples/counter`,
    '',
    ...guide.nodes.map(n => `  node ${n.node}  pid ${String(n.pid).padEnd(7)} ${shortPeerId(n.peerId)}  ${roles(n.peerId)}`.trimEnd()),
    '',
    `Dashboard   ${guide.dashboard}   (node ${guide.home}; every node serves one)`,
    '',
    `The counter through the HTTP gateway of node ${guide.home}:`,
    ...guide.curl.map(c => `  ${c}`),
    '',
    `The CLI (from this directory), talking to node ${guide.home}:`,
    ...guide.commands.map(c => `  ${c}`),
    ''
  ]
  if (guide.failover !== undefined) {
    lines.push(
      `Failover: node ${guide.failover.node} runs the counter. Kill it and watch its clone take over, count intact:`,
      `  ${guide.failover.kill}`,
      ''
    )
  }
  lines.push(`Logs: ${join(dirname(dirname(guide.nodes[0].log)), 'node-*', 'stem.log')}`, 'Ctrl-C stops everything.', '')
  return lines.join('\n')
}
