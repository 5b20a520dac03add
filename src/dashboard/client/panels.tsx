// The tables beside the graph: apps with their Raft group, cell instances, recent events.
import type { AppInfo, CellInfo, MeshEvent } from '../types.js'
import { appColor, clock, rate, shortenIds, shortId } from './format.js'

function Swatch (props: { app: string }) {
  return <span class="swatch" style={{ background: appColor(props.app) }} />
}

export function AppsPanel (props: { apps: AppInfo[] }) {
  if (props.apps.length === 0) return <p class="empty">No apps published yet.</p>
  return (
    <table class="apps">
      <thead><tr><th>app</th><th>leader</th><th>term</th><th>members</th></tr></thead>
      <tbody>
        {props.apps.map(a => (
          <tr key={a.app} data-app={a.app}>
            <td><Swatch app={a.app} />{a.app}</td>
            <td class="mono">{a.leader === '' ? <span class="muted">electing…</span> : shortId(a.leader)}</td>
            <td class="num">{a.term}</td>
            <td class="mono">{a.members.map(m => <span key={m} class={m === a.leader ? 'chip lead' : 'chip'}>{shortId(m)}</span>)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

/** click a row to show that cell's log below the table */
export function CellsPanel (props: { cells: CellInfo[], selected?: string, onSelect?: (address: string) => void }) {
  if (props.cells.length === 0) return <p class="empty">No cells placed.</p>
  const top = Math.max(1, ...props.cells.map(c => c.rate))
  const sorted = [...props.cells].sort((a, b) => a.address.localeCompare(b.address))
  return (
    <table class="cells">
      <thead><tr><th>address</th><th>node</th><th>state</th><th>clones</th><th class="num">msg/s</th></tr></thead>
      <tbody>
        {sorted.map(c => (
          <tr key={c.address} data-cell={c.address} class={c.address === props.selected ? 'selected' : undefined} onClick={() => { props.onSelect?.(c.address) }}>
            <td class="mono"><Swatch app={c.app} />{c.address}</td>
            <td class="mono">{shortId(c.node)}</td>
            <td><span class={`state state-${c.state}`} title={c.reason !== undefined ? `since ${new Date(c.since ?? 0).toLocaleString()}: ${c.reason}` : undefined}>{c.state}</span>{c.reason !== undefined ? <span class="reason"> {c.reason}</span> : null}</td>
            <td class="mono">{c.clones.length === 0 ? <span class="muted">none</span> : c.clones.map(p => <span key={p} class="chip">{shortId(p)}</span>)}</td>
            <td class="num rate"><span class="bar" style={{ width: `${Math.round((c.rate / top) * 40)}px` }} />{rate(c.rate)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function EventsPanel (props: { events: MeshEvent[] }) {
  if (props.events.length === 0) return <p class="empty">Nothing has happened yet.</p>
  const recent = props.events.slice(-60).reverse()
  return (
    <ol class="events">
      {recent.map((e, i) => (
        <li key={`${e.at}:${props.events.length - i}`} class={`event kind-${e.kind}`}>
          <time>{clock(e.at)}</time>
          <span class="kind">{e.kind}</span>
          <span class="text" title={e.text}>{shortenIds(e.text)}</span>
        </li>
      ))}
    </ol>
  )
}
