// The log of the cell selected in the cells table: its recent lines from every node
// (GET /dashboard/logs?cell=ADDRESS), fetched again every 2 s while it is shown.
import type { DashboardLogLine } from '../types.js'
import { clock, shortId } from './format.js'
import { usePolledJson } from './polled.js'

export function CellLogPanel (props: { address: string, query: string }) {
  const sep = props.query === '' ? '?' : '&'
  const { value: lines, error } = usePolledJson<DashboardLogLine[]>(`/dashboard/logs${props.query}${sep}cell=${encodeURIComponent(props.address)}`)
  return (
    <div class="cell-log" data-log={props.address}>
      <h3>Log of <span class="mono">{props.address}</span></h3>
      {error !== '' ? <p class="empty">{error}</p> : lines === undefined ? <p class="empty">Loading…</p> : lines.length === 0 ? <p class="empty">No log lines yet.</p> : (
        <ol class="log-lines">
          {lines.slice(-50).reverse().map(l => (
            <li key={`${l.node}:${l.at}:${l.text}`} class={`log-line kind-${l.kind}`}>
              <time>{clock(l.at)}</time>
              <span class="mono">{shortId(l.node)}</span>
              <span class="kind">{l.kind}</span>
              <pre class="text">{l.text}</pre>
            </li>
          ))}
        </ol>
      )}
    </div>
  )
}
