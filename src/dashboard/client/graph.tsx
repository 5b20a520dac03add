// The mesh as a graph drawn by hand in SVG: nodes on a circle (this node on top), a ring
// per node showing how many of its contributed cell slots are used, its cells as dots
// around it (filled: serving instance, hollow: warm clone) in their app's colour, and
// each app's Raft group as lines from its leader to the other members.
import type { AppInfo, CellInfo, NodeInfo } from '../types.js'
import { appColor, bytes, cores, shortId } from './format.js'

const W = 640
const H = 460
const R = 40

interface Placed { node: NodeInfo, x: number, y: number }

function layout (nodes: NodeInfo[]): Placed[] {
  const ordered = [...nodes].sort((a, b) => Number(b.self === true) - Number(a.self === true) || a.id.localeCompare(b.id))
  const cx = W / 2
  const cy = H / 2 + 4
  if (ordered.length === 1) return [{ node: ordered[0], x: cx, y: cy }]
  const radius = Math.min(W, H) / 2 - R - 58
  return ordered.map((node, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / ordered.length
    return { node, x: cx + radius * Math.cos(angle), y: cy + radius * Math.sin(angle) }
  })
}

function arc (x: number, y: number, r: number, fraction: number): string {
  const f = Math.min(Math.max(fraction, 0), 0.9999)
  const a = -Math.PI / 2 + 2 * Math.PI * f
  const large = f > 0.5 ? 1 : 0
  return `M ${x} ${y - r} A ${r} ${r} 0 ${large} 1 ${x + r * Math.cos(a)} ${y + r * Math.sin(a)}`
}

function CellDots (props: { x: number, y: number, cells: CellInfo[], clones: CellInfo[] }) {
  const dots = [
    ...props.cells.map(c => ({ key: `i:${c.address}`, app: c.app, clone: false, title: `${c.address} · ${c.state} · ${c.rate.toFixed(1)} msg/s` })),
    ...props.clones.map(c => ({ key: `c:${c.address}`, app: c.app, clone: true, title: `clone of ${c.address}` }))
  ]
  const shown = dots.slice(0, 24)
  const ring = R + 13
  return (
    <g>
      {shown.map((d, i) => {
        const angle = -Math.PI / 2 + Math.PI / 12 + (2 * Math.PI * i) / Math.max(shown.length, 12)
        const cx = props.x + ring * Math.cos(angle)
        const cy = props.y + ring * Math.sin(angle)
        const color = appColor(d.app)
        return (
          <circle key={d.key} class={d.clone ? 'dot clone' : 'dot'} cx={cx} cy={cy} r={5}
            fill={d.clone ? 'var(--card)' : color} stroke={color} stroke-width={2}>
            <title>{d.title}</title>
          </circle>
        )
      })}
      {dots.length > shown.length && <text class="more" x={props.x + ring + 10} y={props.y - ring}>+{dots.length - shown.length}</text>}
    </g>
  )
}

export function MeshGraph (props: { nodes: NodeInfo[], apps: AppInfo[], cells: CellInfo[] }) {
  const placed = layout(props.nodes)
  const at = new Map(placed.map(p => [p.node.id, p]))
  const live = placed.filter(p => p.node.status !== 'lost')
  const leaderOf = new Map<string, AppInfo[]>()
  for (const app of props.apps) {
    if (app.leader !== '') leaderOf.set(app.leader, [...(leaderOf.get(app.leader) ?? []), app])
  }

  return (
    <svg class="graph" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="mesh graph">
      <g class="mesh-links">
        {live.flatMap((a, i) => live.slice(i + 1).map(b => (
          <line key={`${a.node.id}-${b.node.id}`} x1={a.x} y1={a.y} x2={b.x} y2={b.y} />
        )))}
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
      {placed.map(({ node, x, y }) => {
        const lost = node.status === 'lost'
        const used = node.capacity.cells > 0 ? (node.capacity.cells - node.free.cells) / node.capacity.cells : 0
        const hosted = props.cells.filter(c => c.node === node.id)
        const cloned = props.cells.filter(c => c.clones.includes(node.id))
        const leads = leaderOf.get(node.id) ?? []
        return (
          <g key={node.id} class={`node${lost ? ' lost' : ''}${node.self === true ? ' self' : ''}`} data-node={node.id}>
            <title>{`${node.id}\n${node.addrs.join('\n')}`}</title>
            <circle class="body" cx={x} cy={y} r={R} />
            <circle class="track" cx={x} cy={y} r={R - 5} />
            {!lost && used > 0 && <path class="used" d={arc(x, y, R - 5, used)} />}
            <text class="id" x={x} y={y - 3}>{shortId(node.id)}</text>
            <text class="slots" x={x} y={y + 13}>{lost ? 'lost' : `${node.capacity.cells - node.free.cells}/${node.capacity.cells} cells`}</text>
            {!lost && <CellDots x={x} y={y} cells={hosted} clones={cloned} />}
            <text class="cap" x={x} y={y + R + 30}>{`cpu ${cores(node.free.cpu)}/${cores(node.capacity.cpu)} · mem ${bytes(node.free.memory)}/${bytes(node.capacity.memory)} free`}</text>
            {node.self === true && <text class="you" x={x} y={y + R + 44}>this node</text>}
            {leads.map((app, i) => (
              <text key={app.app} class="leader" x={x} y={y - R - 20 - i * 14} fill={appColor(app.app)}>★ {app.app} leader</text>
            ))}
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
      <li><svg viewBox="0 0 20 20"><line x1="2" y1="10" x2="18" y2="10" stroke="var(--accent)" stroke-width="2" /></svg>Raft group</li>
      <li><svg viewBox="0 0 20 20"><circle cx="10" cy="10" r="7" fill="none" stroke="var(--muted)" stroke-dasharray="3 2" /></svg>lost node</li>
    </ul>
  )
}
