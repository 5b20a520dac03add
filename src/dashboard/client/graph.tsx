// The mesh as a graph drawn by hand in SVG: nodes on a circle (this node on top), a ring
// per node showing how many of its contributed cell slots are used, its cells as dots
// around it (filled: serving instance, hollow: warm clone) in their app's colour, and
// each app's Raft group as lines from its leader to the other members. The links of this
// node show how it reaches each peer (`path`): solid for a direct TCP or WebRTC connection,
// dashed for one only through a circuit relay hop; links between two other nodes are
// drawn faint (this node does not know how they reach each other).
import type { AppInfo, CellInfo, NodeInfo } from '../types.js'
import { appColor, bytes, clock, cores, shortId } from './format.js'

const W = 720
const H = 480
const R = 44

interface Placed { node: NodeInfo, x: number, y: number, /** direction away from the centre */ out: number }

function layout (nodes: NodeInfo[]): Placed[] {
  const ordered = [...nodes].sort((a, b) => Number(b.self === true) - Number(a.self === true) || a.id.localeCompare(b.id))
  const cx = W / 2
  const cy = H / 2
  if (ordered.length === 1) return [{ node: ordered[0], x: cx, y: cy - 30, out: Math.PI / 2 }]
  const radius = Math.min(W, H) / 2 - R - 50
  return ordered.map((node, i) => {
    const out = -Math.PI / 2 + (2 * Math.PI * i) / ordered.length
    return { node, x: cx + radius * Math.cos(out), y: cy + radius * Math.sin(out), out }
  })
}

function arc (x: number, y: number, r: number, fraction: number): string {
  const f = Math.min(Math.max(fraction, 0), 0.9999)
  const a = -Math.PI / 2 + 2 * Math.PI * f
  const large = f > 0.5 ? 1 : 0
  return `M ${x} ${y - r} A ${r} ${r} 0 ${large} 1 ${x + r * Math.cos(a)} ${y + r * Math.sin(a)}`
}

/** a node's cells as dots on the side facing the centre, leaving the outer side to labels */
function CellDots (props: { x: number, y: number, toward: number, cells: CellInfo[], clones: CellInfo[] }) {
  const dots = [
    ...props.cells.map(c => ({ key: `i:${c.address}`, app: c.app, clone: false, title: `${c.address} · ${c.state} · ${c.rate.toFixed(1)} msg/s` })),
    ...props.clones.map(c => ({ key: `c:${c.address}`, app: c.app, clone: true, title: `warm clone of ${c.address}` }))
  ]
  const shown = dots.slice(0, 15)
  const ring = R + 12
  const step = 0.27
  return (
    <g>
      {shown.map((d, i) => {
        const angle = props.toward + step * (i % 2 === 0 ? i / 2 : -(i + 1) / 2)
        const color = appColor(d.app)
        return (
          <circle key={d.key} class={d.clone ? 'dot clone' : 'dot'} cx={props.x + ring * Math.cos(angle)} cy={props.y + ring * Math.sin(angle)} r={5.5}
            fill={d.clone ? 'var(--card)' : color} stroke={color} stroke-width={2}>
            <title>{d.title}</title>
          </circle>
        )
      })}
      {dots.length > shown.length && <text class="more" x={props.x + (ring + 16) * Math.cos(props.toward)} y={props.y + (ring + 16) * Math.sin(props.toward) + 4}>+{dots.length - shown.length}</text>}
    </g>
  )
}

/** the lines written under a node (above it for nodes in the upper part of the circle) */
function Labels (props: { x: number, y: number, out: number, lines: Array<{ text: string, cls: string, color?: string }> }) {
  const above = Math.sin(props.out) < -0.35
  const lines = above ? [...props.lines].reverse() : props.lines
  const first = above ? props.y - R - 12 - 15 * (lines.length - 1) : props.y + R + 20
  return (
    <g class="labels">
      {lines.map((line, i) => (
        <text key={i} class={line.cls} x={props.x} y={first + i * 15} style={line.color != null ? { fill: line.color } : undefined}>{line.text}</text>
      ))}
    </g>
  )
}

export function MeshGraph (props: { nodes: NodeInfo[], apps: AppInfo[], cells: CellInfo[] }) {
  const placed = layout(props.nodes)
  const at = new Map(placed.map(p => [p.node.id, p]))
  const live = placed.filter(p => p.node.status !== 'lost')
  const pathText = { direct: 'direct (TCP)', webrtc: 'direct (WebRTC hole punch)', relayed: 'relayed through a member' }
  const leaderOf = new Map<string, AppInfo[]>()
  for (const app of props.apps) {
    if (app.leader !== '') leaderOf.set(app.leader, [...(leaderOf.get(app.leader) ?? []), app])
  }

  return (
    <svg class="graph" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="mesh graph">
      <g class="mesh-links">
        {live.flatMap((a, i) => live.slice(i + 1).map(b => {
          // a link of this node: how it reaches the other one (undefined: not connected)
          const other = a.node.self === true ? b.node : b.node.self === true ? a.node : undefined
          const path = other?.path
          const cls = other === undefined ? 'others' : path ?? 'unconnected'
          return (
            <line key={`${a.node.id}-${b.node.id}`} class={cls} data-path={path} data-peer={other?.id} x1={a.x} y1={a.y} x2={b.x} y2={b.y}>
              {other !== undefined && <title>{`${other.name ?? shortId(other.id)}: ${path !== undefined ? pathText[path] : 'not connected'}`}</title>}
            </line>
          )
        }))}
      </g>
      <g class="group-links">
        {props.apps.flatMap((app, k) => {
          const leader = at.get(app.leader)
          if (leader == null) return []
          const offset = (k % 4) * 3 - 4
          return app.members.filter(m => m !== app.leader).map(m => {
            const member = at.get(m)
            if (member == null) return null
            return <line key={`${app.app}:${m}`} x1={leader.x + offset} y1={leader.y + offset} x2={member.x + offset} y2={member.y + offset} stroke={appColor(app.app)} />
          })
        })}
      </g>
      {placed.map(({ node, x, y, out }) => {
        const lost = node.status === 'lost'
        const used = node.capacity.cells > 0 ? (node.capacity.cells - node.free.cells) / node.capacity.cells : 0
        const hosted = props.cells.filter(c => c.node === node.id)
        const cloned = props.cells.filter(c => c.clones.includes(node.id))
        const lines = [
          ...(leaderOf.get(node.id) ?? []).map(app => ({ text: `★ ${app.app} leader`, cls: 'leader', color: appColor(app.app) })),
          lost
            ? { text: `last seen ${clock(node.lastSeen)}`, cls: 'cap' }
            : { text: `free: cpu ${cores(node.free.cpu)}/${cores(node.capacity.cpu)} · ${bytes(node.free.memory)}/${bytes(node.capacity.memory)}`, cls: 'cap' },
          ...(node.self === true ? [{ text: 'this node', cls: 'you' }] : [])
        ]
        return (
          <g key={node.id} class={`node${lost ? ' lost' : ''}${node.self === true ? ' self' : ''}`} data-node={node.id}>
            <title>{`${node.id}\n${node.addrs.join('\n')}`}</title>
            <circle class="body" cx={x} cy={y} r={R} />
            <circle class="track" cx={x} cy={y} r={R - 6} />
            {!lost && used > 0 && <path class="used" d={arc(x, y, R - 6, used)} />}
            <text class="id" x={x} y={y - 2}>{node.name ?? shortId(node.id)}</text>
            <text class="slots" x={x} y={y + 14}>{lost ? 'lost' : `${node.capacity.cells - node.free.cells}/${node.capacity.cells} cells`}</text>
            {!lost && <CellDots x={x} y={y} toward={out + Math.PI} cells={hosted} clones={cloned} />}
            <Labels x={x} y={y} out={out} lines={lines} />
          </g>
        )
      })}
    </svg>
  )
}

export function Legend () {
  return (
    <ul class="legend">
      <li><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="7" class="legend-ring" /><path d="M 10 3 A 7 7 0 0 1 17 10" class="legend-used" /></svg>cell slots used</li>
      <li><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="5" fill="var(--accent)" /></svg>cell instance</li>
      <li><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="4.5" fill="none" stroke="var(--accent)" stroke-width="2" /></svg>warm clone</li>
      <li><span class="star">★</span>Raft leader</li>
      <li><svg viewBox="0 0 20 20"><line x1="2" y1="10" x2="18" y2="10" class="legend-direct" /></svg>direct link</li>
      <li><svg viewBox="0 0 20 20"><line x1="2" y1="10" x2="18" y2="10" class="legend-relayed" /></svg>relayed link</li>
      <li><svg viewBox="0 0 20 20"><line x1="2" y1="10" x2="18" y2="10" stroke="var(--accent)" stroke-width="2" /></svg>Raft group</li>
      <li><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="7" fill="none" stroke="var(--muted)" stroke-dasharray="3 2" /></svg>lost node</li>
    </ul>
  )
}
